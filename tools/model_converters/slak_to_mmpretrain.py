"""Convert an official SLaK ImageNet-1k classification checkpoint to an
mmpretrain checkpoint that ``configs/slak_*_in1k.py`` load.

The official files (``main.py`` of VITA-Group/SLaK) hold the weights
under ``model`` (and ``model_ema``, converted with ``--key model_ema``)
next to the pickled training ``args``. Example::

    python tools/model_converters/slak_to_mmpretrain.py \\
        SLaK_tiny_checkpoint.pth checkpoints/slak_tiny_in1k_300e.pth
    python tools/test.py configs/slak_t_in1k.py \\
        checkpoints/slak_tiny_in1k_300e.pth

Key renames: :mod:`slak_mm.converters.slak`; options and the printed
summary: ``converter_cli.py``.
"""
from converter_cli import slak_main

if __name__ == '__main__':
    slak_main('cls')

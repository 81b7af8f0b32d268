"""Convert an official SLaK ADE20K UperNet checkpoint (mmseg 0.x:
``state_dict`` with ``backbone.``, ``decode_head.`` and
``auxiliary_head.`` keys) to an mmseg 1.x checkpoint that
``configs/upernet_slak_*_ade20k.py`` evaluate, e.g.
``python tools/model_converters/slak_to_mmseg.py
SLaK_tiny_upernet_ade20k.pth checkpoints/upernet_slak_t_ade20k.pth``.

Same options and summary as ``slak_to_mmpretrain.py``.
"""
from converter_cli import slak_main

if __name__ == '__main__':
    slak_main('seg')

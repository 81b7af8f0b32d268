"""Convert an official SLaK ADE20K UperNet checkpoint (mmseg 0.x) to an
mmseg 1.x checkpoint that ``configs/upernet_slak_*_ade20k.py`` evaluate.

The official files hold ``state_dict`` with ``backbone.``,
``decode_head.`` and ``auxiliary_head.`` keys. Example::

    python tools/model_converters/slak_to_mmseg.py \\
        SLaK_tiny_upernet_ade20k.pth checkpoints/upernet_slak_t_ade20k.pth
    python tools/test.py configs/upernet_slak_t_ade20k.py \\
        checkpoints/upernet_slak_t_ade20k.pth

Key renames, loading safety (``--unsafe-load``) and the printed summary:
:mod:`slak_mm.utils.official_checkpoint`.
"""
from slak_mm.utils.official_checkpoint import converter_main

if __name__ == '__main__':
    converter_main('seg')

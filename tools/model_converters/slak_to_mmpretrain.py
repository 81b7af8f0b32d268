"""Convert an official SLaK ImageNet-1k classification checkpoint to an
mmpretrain checkpoint that ``configs/slak_*_in1k.py`` load.

The official files (``main.py`` of VITA-Group/SLaK) hold the weights
under ``model`` (and ``model_ema``) next to the pickled training ``args``.
Example::

    python tools/model_converters/slak_to_mmpretrain.py \\
        SLaK_tiny_checkpoint.pth checkpoints/slak_tiny_in1k_300e.pth
    python tools/test.py configs/slak_t_in1k.py \\
        checkpoints/slak_tiny_in1k_300e.pth

``--key model_ema`` converts the EMA weights. Key renames, loading safety
(``--unsafe-load``) and the printed summary:
:mod:`slak_mm.utils.official_checkpoint`.
"""
from slak_mm.utils.official_checkpoint import converter_main

if __name__ == '__main__':
    converter_main('cls')

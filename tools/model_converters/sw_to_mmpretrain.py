"""Convert an official ShiftwiseConv (SW) ImageNet-1k classification
checkpoint to an mmpretrain checkpoint that ``configs/sw_t_in1k.py`` loads.

The official files (lidc54/shift-wiseConv, a SLaK / ConvNeXt ``main.py``)
hold the ``ShiftWise_v1`` / ``ShiftWise_v2`` weights under ``model`` (and
``model_ema``) next to the pickled training ``args``. Example::

    python tools/model_converters/sw_to_mmpretrain.py \\
        SW_tiny_checkpoint.pth checkpoints/sw_t_in1k.pth
    python tools/test.py configs/sw_t_in1k.py checkpoints/sw_t_in1k.pth

The official SW layers do not save their random indices; the converter
redraws them from the official seed (``--ghost-ratio`` and ``--num-reps``
must match the trained model: 0.23 and 4 for the published SW-T). Key
renames, ``--key model_ema``, ``--unsafe-load`` and the printed summary:
:mod:`slak_mm.utils.official_sw_checkpoint`.
"""
from slak_mm.utils.official_sw_checkpoint import converter_main

if __name__ == '__main__':
    converter_main()

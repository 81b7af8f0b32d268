# Kernel-size ablation (SLaK-T, 120 epochs) with kernels 61/59/57/13 + 5;
# otherwise as ./slak_t_k51_in1k_120e.py. Published top-1: 81.5.
_base_ = ['./slak_t_k51_in1k_120e.py']
model = dict(backbone=dict(kernel_size=[61, 59, 57, 13, 5]))

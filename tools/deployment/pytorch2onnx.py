"""Export a slak_mm classifier or segmentor to ONNX, in deploy form.

Builds the model of CONFIG (an mmpretrain or mmseg config), loads CKPT
(train form, or the deploy form written by
``tools/model_converters/slak_reparameterize.py``), re-parameterizes the
backbone (``model.backbone.switch_to_deploy()``: each large kernel's
branches and BN become two depthwise convs with a bias), and exports
``model(input, mode='tensor')`` with ``torch.onnx.export(dynamo=True)``,
PyTorch's default exporter since 2.9 (it needs ``onnxscript``; the
TorchScript exporter is deprecated)::

    python tools/deployment/pytorch2onnx.py configs/slak_t_in1k.py \\
        CKPT slak_t.onnx --dynamic --verify --benchmark 20
    python tools/deployment/pytorch2onnx.py configs/upernet_slak_t_ade20k.py \\
        CKPT upernet_slak_t.onnx --shape 512 512 --dynamic

The graph has one input ``input``, ``(N, 3, H, W)`` float32, the image
*after* the config's ``data_preprocessor`` (RGB order, normalized with its
``mean`` / ``std``, recorded in the file's metadata), and one output
``output``:

- classification: the head's logits ``(N, num_classes)`` (``--softmax``:
  the scores mmpretrain reports as ``pred_scores``);
- segmentation: the decode head's logits ``(N, num_classes, H / 4,
  W / 4)`` (``EncoderDecoder`` in ``'tensor'`` mode; resize them to the
  image and take the argmax for a label map).

``--dynamic`` makes the batch size, height and width free (the example
input then has at least 2 images: ``torch.export`` fixes a dimension of
size 1). Every constant subgraph is folded into weights (e.g. ShiftWise's
kernels, which its forward assembles from the pieces). Detection models
are refused: their outputs need NMS and RoI ops that ``'tensor'`` mode
does not contain. The graph is the one eager inference runs (without
gradients): the wide ``(s, K)`` strips of the large kernels run as the
transposed tall problem, as on the PyTorch CPU path, which onnxruntime
also computes faster than plain ``(s, K)`` convolutions
(``docs/deployment.md``). ``--verify`` runs the file in onnxruntime on
the example input and compares it with the PyTorch model; ``--benchmark
N`` times PyTorch eager (as loaded, and in deploy form) against
onnxruntime on the CPU.
"""
import argparse
import os.path as osp
import statistics
import time
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn as nn
from mmengine.config import Config, DictAction
from mmengine.model import revert_sync_batchnorm
from mmengine.runner import CheckpointLoader, load_state_dict

from slak_mm.apis import build_model
from slak_mm.utils import get_config_scope

#: Toolboxes whose ``'tensor'`` mode output is the whole prediction.
EXPORTABLE_SCOPES = ('mmpretrain', 'mmseg')
INPUT_NAME, OUTPUT_NAME = 'input', 'output'
#: Constant folding limit (elements) of the ONNX optimizer: no limit.
FOLD_SIZE_LIMIT = 2**62


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('config', help='mmpretrain or mmseg config')
    parser.add_argument('checkpoint', help='checkpoint (train or deploy form)')
    parser.add_argument('out', help='path of the ONNX file')
    parser.add_argument(
        '--shape',
        type=int,
        nargs=2,
        default=[224, 224],
        metavar=('H', 'W'),
        help='height and width of the example input (default: 224 224)')
    parser.add_argument(
        '--batch-size',
        type=int,
        default=1,
        help='images in the example input (with --dynamic at least 2)')
    parser.add_argument(
        '--opset',
        type=int,
        default=None,
        help='ONNX opset version '
        '(default: the exporter\'s recommended one)')
    parser.add_argument(
        '--dynamic',
        action='store_true',
        help='free batch size, height and width')
    parser.add_argument(
        '--softmax',
        action='store_true',
        help='classification: output softmax scores instead of logits')
    parser.add_argument(
        '--verify',
        action='store_true',
        help='compare onnxruntime with PyTorch on the example input')
    parser.add_argument(
        '--benchmark',
        type=int,
        default=0,
        metavar='N',
        help='time N forwards of PyTorch eager and onnxruntime (CPU)')
    parser.add_argument(
        '--threads',
        type=int,
        default=None,
        help='CPU threads of PyTorch and onnxruntime for --benchmark')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config settings, "key=value" pairs')
    args = parser.parse_args(argv)
    if min(args.shape) < 32:
        parser.error(f'--shape must be at least 32 x 32, got {args.shape}')
    if args.batch_size < 1:
        parser.error(f'--batch-size must be >= 1, got {args.batch_size}')
    return args


class TensorModeWrapper(nn.Module):
    """``model(inputs, mode='tensor')`` as a one-input, one-output module.

    Args:
        model (nn.Module): An mmpretrain ``ImageClassifier`` or mmseg
            ``EncoderDecoder`` (any OpenMMLab ``BaseModel`` whose
            ``'tensor'`` mode returns one tensor).
        softmax (bool): Apply softmax over dim 1 to the output. Defaults
            to False.
    """

    def __init__(self, model: nn.Module, softmax: bool = False) -> None:
        super().__init__()
        self.model = model
        self.softmax = softmax

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """Args:
            inputs (torch.Tensor): Preprocessed images ``(N, 3, H, W)``.

        Returns:
            torch.Tensor: ``(N, num_classes)`` or ``(N, num_classes, h,
            w)``.
        """
        out = self.model(inputs, mode='tensor')
        return out.softmax(dim=1) if self.softmax else out


def load_model(cfg: Config, checkpoint: str, deploy: bool = True) -> nn.Module:
    """Build the model of ``cfg`` in eval mode with the weights of
    ``checkpoint`` (strict).

    SyncBN becomes BN (``revert_sync_batchnorm``). A checkpoint in deploy
    form (keys ``*.reparam_*``) is loaded into the deploy form, whatever
    ``deploy`` says.

    Args:
        cfg (Config): An mmpretrain or mmseg config with a slak_mm
            backbone.
        checkpoint (str): A Runner checkpoint (``state_dict``) or a bare
            state dict.
        deploy (bool): Switch the backbone to deploy form after loading.
            Defaults to True.

    Returns:
        nn.Module: The model, on the CPU, in eval mode.

    Raises:
        ValueError: If the config belongs to another toolbox than
            ``EXPORTABLE_SCOPES``.
        RuntimeError: If the checkpoint's keys do not match the model.
    """
    scope = get_config_scope(cfg)
    if scope not in EXPORTABLE_SCOPES:
        raise ValueError(
            f'`default_scope` {scope!r} cannot be exported: this tool '
            f'exports {EXPORTABLE_SCOPES} models (detectors need NMS and '
            'RoI ops outside their \'tensor\' mode).')
    ckpt = CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu')
    state_dict = ckpt.get('state_dict', ckpt)
    model = build_model(cfg, init_cfg=None)
    model = revert_sync_batchnorm(model).eval()
    if any('.reparam_' in key for key in state_dict):
        model.backbone.switch_to_deploy()
    load_state_dict(model, state_dict, strict=True)
    if deploy:
        model.backbone.switch_to_deploy()
    return model


def export_onnx(module: nn.Module,
                example: torch.Tensor,
                out: str,
                dynamic: bool = False,
                opset: Optional[int] = None,
                metadata: Optional[Dict[str, str]] = None) -> str:
    """Export ``module`` with ``torch.onnx.export(dynamo=True)`` into one
    file with its weights (over 2 GB, the limit of one ONNX file, the
    exporter writes them to an external data file next to it).

    Args:
        module (nn.Module): One tensor in, one tensor out.
        example (torch.Tensor): Example input ``(N, 3, H, W)``; with
            ``dynamic`` ``N >= 2``.
        out (str): Path of the ONNX file.
        dynamic (bool): Free batch, height and width. Defaults to False.
        opset (int, optional): ONNX opset. Defaults to the exporter's.
        metadata (dict[str, str], optional): Stored as the model's
            ``metadata_props``.

    Returns:
        str: ``out``.

    Raises:
        ValueError: If ``dynamic`` and the example has one image.
    """
    dynamic_shapes = None
    if dynamic:
        if example.shape[0] < 2:
            raise ValueError('--dynamic needs an example batch of at least '
                             f'2 images, got {example.shape[0]}.')
        Dim = torch.export.Dim
        dynamic_shapes = {
            'inputs': {
                0: Dim('batch'),
                2: Dim('height'),
                3: Dim('width')
            }
        }
    with torch.no_grad():
        program = torch.onnx.export(
            module, (example, ),
            dynamo=True,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            opset_version=opset,
            dynamic_shapes=dynamic_shapes,
            optimize=False)
    # the exporter's optimizer, folding constant subgraphs of any size:
    # ShiftWise assembles its kernels from the pieces in the forward, and
    # onnxruntime (1.32) folding that part itself breaks the graph
    # ("Node input 'pad_1' is not a graph input")
    from onnxscript.optimizer import optimize_ir
    optimize_ir(
        program.model,
        input_size_limit=FOLD_SIZE_LIMIT,
        output_size_limit=FOLD_SIZE_LIMIT)
    program.model.metadata_props.update(metadata or {})
    program.save(out, external_data=False)
    return out


def preprocessing_metadata(cfg: Config, model: nn.Module,
                           output: str) -> Dict[str, str]:
    """What a user of the ONNX file needs to know, as strings: the
    config, the input normalization of ``model.data_preprocessor`` and
    the meaning of the output."""
    pre = model.data_preprocessor
    meta = dict(config=osp.basename(cfg.filename or ''), output=output)
    for key in ('mean', 'std'):
        value = getattr(pre, key, None)
        if value is not None:
            meta[key] = str([round(v, 4) for v in value.flatten().tolist()])
    # "flip the channels of the BGR image" in mmpretrain, mmseg, mmengine
    for flag in ('to_rgb', 'channel_conversion', '_channel_conversion'):
        if hasattr(pre, flag):
            meta['channel_order'] = 'RGB' if getattr(pre, flag) else 'BGR'
            break
    return meta


def onnxruntime_session(path: str, threads: Optional[int] = None):
    """An ``onnxruntime.InferenceSession`` on the CPU."""
    import onnxruntime as ort
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    return ort.InferenceSession(
        path, options, providers=['CPUExecutionProvider'])


def verify(session,
           module: nn.Module,
           example: torch.Tensor,
           rtol: float = 1e-3,
           atol_scale: float = 1e-4) -> dict:
    """Compare onnxruntime with PyTorch on ``example``.

    Args:
        session: An onnxruntime session of the exported ``module``.
        module (nn.Module): The PyTorch module.
        example (torch.Tensor): Input.
        rtol (float): Relative tolerance. Defaults to 1e-3.
        atol_scale (float): Absolute tolerance as a fraction of the largest
            PyTorch output magnitude. Defaults to 1e-4.

    Returns:
        dict: ``max_abs_diff``, ``max_rel_diff`` (relative to the largest
        magnitude), ``max_abs`` and ``allclose``.
    """
    with torch.no_grad():
        expected = module(example).numpy()
    got = session.run(None, {INPUT_NAME: example.numpy()})[0]
    scale = float(np.abs(expected).max())
    diff = float(np.abs(got - expected).max())
    return dict(
        max_abs_diff=diff,
        max_rel_diff=diff / max(scale, 1e-12),
        max_abs=scale,
        allclose=bool(
            np.allclose(got, expected, rtol=rtol, atol=atol_scale * scale)))


def time_runs(runs: Dict[str, callable],
              repeats: int,
              warmup: int = 2) -> Dict[str, float]:
    """Median wall time (ms) of each callable, timed round-robin (each
    round runs every callable once) so that a changing load on the machine
    affects them alike."""
    for _ in range(warmup):
        for run in runs.values():
            run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1e3)
    return {name: statistics.median(t) for name, t in times.items()}


def benchmark(cfg: Config, checkpoint: str, session, deploy: nn.Module,
              example: torch.Tensor, repeats: int) -> Dict[str, float]:
    """Latency (ms, median) on ``example`` of: the PyTorch model as the
    toolboxes' inferencers load it (train form in eval mode), the exported
    module (deploy form) and onnxruntime."""
    eager = TensorModeWrapper(
        load_model(cfg, checkpoint, deploy=False), deploy.softmax)
    feed = {INPUT_NAME: example.numpy()}

    def run_torch(module):

        def run():
            with torch.no_grad():
                module(example)

        return run

    return time_runs(
        {
            'pytorch eager': run_torch(eager),
            'pytorch eager, deploy form': run_torch(deploy),
            'onnxruntime': lambda: session.run(None, feed),
        }, repeats)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    args = parse_args(argv)
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    model = load_model(cfg, args.checkpoint)
    module = TensorModeWrapper(model, args.softmax).eval()
    batch = max(args.batch_size, 2) if args.dynamic else args.batch_size
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(batch, 3, *args.shape, generator=generator)
    if get_config_scope(cfg) == 'mmseg':
        output = 'decode head logits (N, num_classes, H/4, W/4)'
    else:
        output = 'scores (softmax)' if args.softmax else 'logits'
    export_onnx(module, example, args.out, args.dynamic, args.opset,
                preprocessing_metadata(cfg, model, output))
    report = dict(out=args.out, size_mb=osp.getsize(args.out) / 2**20)
    print(f'Saved {args.out} ({report["size_mb"]:.1f} MiB; input '
          f'{tuple(example.shape)}{", dynamic" if args.dynamic else ""}; '
          f'output: {output}).')
    if not (args.verify or args.benchmark):
        return report
    if args.threads:
        torch.set_num_threads(args.threads)
    session = onnxruntime_session(args.out, args.threads)
    if args.verify:
        report['verify'] = verify(session, module, example)
        message = ('onnxruntime vs PyTorch: max abs diff {max_abs_diff:.3g}, '
                   'max rel diff {max_rel_diff:.3g} (largest output '
                   '{max_abs:.3g})'.format(**report['verify']))
        if not report['verify']['allclose']:
            raise RuntimeError(f'{message}: outside the tolerance.')
        print(message)
    if args.benchmark:
        report['latency_ms'] = benchmark(cfg, args.checkpoint, session, module,
                                         example, args.benchmark)
        print(f'CPU latency, input {tuple(example.shape)}, '
              f'{torch.get_num_threads()} threads, median of '
              f'{args.benchmark}: ' +
              ', '.join(f'{name} {ms:.1f} ms'
                        for name, ms in report['latency_ms'].items()))
    return report


if __name__ == '__main__':
    main()

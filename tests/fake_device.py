"""A fake CUDA device for CPU-only machines: tensors that say ``cuda:N`` but hold CPU data.

    with fake_cuda():
        tagger.model.to("cuda")        # parameters and buffers become FakeCudaTensors on cuda:0
        tagger.predict(sentences)      # CPU arithmetic, CUDA's rules on mixing devices

CI has no GPU, and code that builds a tensor on the host and combines it with one on the model's
device (a ``torch.tensor(rows)`` index gathered from a CUDA tensor, issue 9) fails only on a GPU.
Inside ``fake_cuda(devices=1)``:

- factories and ``.to()`` / ``.cuda()`` given a CUDA device run on the CPU and return
  ``FakeCudaTensor``s whose ``.device`` is ``cuda:N`` (``"cuda"`` is ``cuda:0``; an index past
  ``devices`` is an invalid ordinal); ``.cpu()``, ``.tolist()``, ``.item()``, ``float()`` give
  host values; ``.numpy()`` without ``.cpu()`` fails, as on a GPU;
- an op that mixes fake-CUDA tensors with CPU tensors of one dimension or more, or ``cuda:0``
  with ``cuda:1``, raises CUDA's ``Expected all tensors to be on the same device ...``. CUDA's
  exceptions are kept: CPU 0-dim tensors (scalars), ``copy_`` and slice assignment across
  devices, CPU indices into a CUDA tensor (``x[idx]``, ``x[idx] = v``), and packed sequences'
  ``lengths`` / ``batch_sizes``, which must be on the CPU;
- all arithmetic is torch's CPU kernels, and LSTM/GRU/RNN calls (``torch._VF.lstm`` ...) run the
  CPU implementation, so a model on the fake device gives bit for bit what it gives on the CPU;
- ``torch.cuda.is_available()`` is True and ``torch.cuda.device_count()`` is ``devices``.
- work submitted to a ``concurrent.futures.ThreadPoolExecutor`` runs on the fake device too
  (torch's modes are per thread; the front end runs the network in a worker thread on a GPU).

Limits:
- only what goes through torch's dispatcher and tensor methods: ``.data_ptr()``, CUDA streams
  and events, ``torch.cuda.*`` memory, RNG or property functions, and custom kernels are not
  emulated; random factories use the CPU generator;
- for inference: autocast on ``cuda`` (``precision="bf16"`` on a GPU) and autograd through fake
  tensors (training) are not supported; move models to the device outside ``inference_mode``,
  as real code does (parameters made inside it cannot be moved back outside it);
- a CPU 0-dim tensor is accepted by every op, though some CUDA kernels (``index_select``) refuse
  it: such mixes are missed, never falsely reported. Under ``inference_mode`` composite ops
  (``linear``, ``lstm``) reach the checks whole and are checked as single kernels;
- in-place ops that change a tensor's shape (``unsqueeze_``) and CUDA-only kernels reached
  outside the routed RNN calls (``_thnn_fused_lstm_cell``) raise NotImplementedError;
- the dispatch mode takes the slot of torch's FakeTensorMode, the one mode under which torch
  skips CUDA's lazy initialisation (impossible on a CPU-only build): it cannot be combined with
  FakeTensorMode or torch.compile. Built for CPU-only builds of torch (checked on 2.13);
- slow (every op goes through Python twice): for tiny test models.
"""
from __future__ import annotations

import contextlib
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator, List, Optional, Tuple

import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode, _disable_current_modes
from torch.utils._pytree import tree_flatten, tree_map

CPU = torch.device("cpu")
aten = torch.ops.aten


class FakeCudaTensor(torch.Tensor):
    """Reports ``device == cuda:N``; holds a plain CPU tensor in ``.inner``."""

    inner: torch.Tensor

    @staticmethod
    def __new__(cls, inner: torch.Tensor, device: torch.device):
        assert type(inner) is torch.Tensor and inner.device == CPU, type(inner)
        return torch.Tensor._make_wrapper_subclass(
            cls, inner.shape, strides=inner.stride(), storage_offset=inner.storage_offset(),
            dtype=inner.dtype, layout=inner.layout, device=device, requires_grad=False)

    def __init__(self, inner: torch.Tensor, device: torch.device):
        self.inner = inner

    __torch_function__ = torch._C._disabled_torch_function_impl

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError(f"{func}: a FakeCudaTensor was used outside fake_cuda(); move the model "
                           "back to the CPU inside the block")

    def __repr__(self) -> str:
        return f"FakeCudaTensor({self.inner!r}, device='{self.device}')"


def _unwrap(x):
    return x.inner if isinstance(x, FakeCudaTensor) else x


# ops whose tensor arguments may legitimately live on different devices, as on real CUDA
_CROSS_DEVICE = {aten.to.other, aten.copy_.default, aten._copy_from.default,
                 aten._copy_from_and_resize.default, aten._to_copy.default}
_INDEXING = {aten.index.Tensor, aten.index_put_.default, aten.index_put.default,
             aten._index_put_impl_.default, aten._unsafe_index.Tensor, aten._unsafe_index_put.default}
_HOST_ARGUMENTS = {  # op -> arguments that must be CPU tensors (and outputs that stay on the CPU)
    aten._pack_padded_sequence.default: ("lengths", (1,)),
    aten._pad_packed_sequence.default: ("batch_sizes", (1,)),
}
_METADATA = {  # questions about tensors rather than computations: answered from the wrappers
    aten._has_compatible_shallow_copy_type.default: lambda a, b: type(a) is type(b) and a.device == b.device,
    aten.is_same_size.default: lambda a, b: a.shape == b.shape,
}
_UNSUPPORTED = {"_thnn_fused_lstm_cell", "_thnn_fused_gru_cell", "_cudnn_rnn", "_cudnn_rnn_flatten_weight",
                "miopen_rnn"}


def _mixing_error(func, name: str, device: torch.device, common: torch.device) -> RuntimeError:
    return RuntimeError(
        f"Expected all tensors to be on the same device, but got {name} is on {device}, different "
        f"from other tensors on {common} (when checking argument in method {func}) "
        "[raised by tests/fake_device.py, as real CUDA would]")


def _named_tensors(func, args, kwargs) -> List[Tuple[str, torch.Tensor]]:
    """(argument name, tensor) for every tensor argument, lists flattened."""
    names = [a.name for a in func._schema.arguments]
    out = []
    values = list(zip(names, args)) + list(kwargs.items())
    for name, value in values:
        leaves, _ = tree_flatten(value)
        out += [(name, t) for t in leaves if isinstance(t, torch.Tensor)]
    return out


def _check_devices(func, args, kwargs) -> None:
    """Raise what real CUDA raises when ``func`` mixes devices it may not mix."""
    if func in _CROSS_DEVICE:
        return
    tensors = _named_tensors(func, args, kwargs)
    host_arg = _HOST_ARGUMENTS.get(func, (None,))[0]
    if host_arg is not None:
        for name, t in tensors:
            if name == host_arg and isinstance(t, FakeCudaTensor):
                raise RuntimeError(f"'{name}' argument should be a 1D CPU int64 tensor, but got "
                                   f"{t.dim()}D {t.device} {t.dtype} tensor ({func}) "
                                   "[raised by tests/fake_device.py, as real CUDA would]")
        tensors = [(n, t) for n, t in tensors if n != host_arg]
    if func in _INDEXING:  # indices may stay on the CPU
        self = tensors[0][1]
        for name, t in tensors:
            if name == "indices" and isinstance(t, FakeCudaTensor) and t.device != self.device:
                raise RuntimeError(f"indices should be either on cpu or on the same device as the "
                                   f"indexed tensor ({self.device}) ({func}) "
                                   "[raised by tests/fake_device.py, as real CUDA would]")
        tensors = [(n, t) for n, t in tensors if n != "indices"]
    fakes = [t.device for _, t in tensors if isinstance(t, FakeCudaTensor)]
    if not fakes:
        return
    common = fakes[0]
    for name, t in tensors:
        if isinstance(t, FakeCudaTensor):
            if t.device != common:
                raise _mixing_error(func, name, t.device, common)
        elif t.dim() > 0:  # CUDA kernels accept CPU scalars (0-dim tensors), nothing bigger
            raise _mixing_error(func, name, t.device, common)


def _device_argument(func, args, kwargs) -> Tuple[Any, Optional[torch.device]]:
    """Where ``func`` takes a ``device`` (its position or name) and the device given, if any."""
    for i, arg in enumerate(func._schema.arguments):
        if arg.name == "device":
            if i < len(args) and not arg.kwarg_only:
                return i, args[i]
            return "device", kwargs.get("device")
    return None, None


def _output_device(func, args, kwargs) -> Optional[torch.device]:
    """Where the outputs live: the ``device`` argument if given, else that of the fake inputs."""
    if func is aten.to.other:
        return args[1].device
    device = _device_argument(func, args, kwargs)[1]
    if device is not None:
        return torch.device(device)
    for leaf in tree_flatten((args, kwargs))[0]:
        if isinstance(leaf, FakeCudaTensor):
            return leaf.device
    return None


def _write_aliases(func) -> List[Optional[int]]:
    """For each return of ``func``: the index of the argument it is written into (in-place, out=)."""
    schema = func._schema
    out = []
    for ret in schema.returns:
        info = ret.alias_info
        index = None
        if info is not None and info.is_write:
            for i, arg in enumerate(schema.arguments):
                if arg.alias_info is not None and arg.alias_info.before_set & info.before_set:
                    index = i
                    break
        out.append(index)
    return out


class _FakeCudaDispatch(TorchDispatchMode):
    """Runs every aten op on CPU tensors and decides which results are fake-CUDA."""

    def __init__(self, devices: int):
        super().__init__()
        self.devices = devices
        # torch skips CUDA's lazy initialisation (impossible on a CPU-only build) only under
        # FakeTensorMode, which it recognises by this key
        self._mode_key = torch._C._TorchDispatchModeKey.FAKE

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        device = _output_device(func, args, kwargs)
        if device is None or device.type == "cpu":
            if not any(isinstance(t, FakeCudaTensor) for t in tree_flatten((args, kwargs))[0]):
                return func(*args, **kwargs)  # all on the CPU: nothing to check or wrap
        if func in _METADATA:
            return _METADATA[func](*args, **kwargs)
        if func._schema.name.split("::")[-1] in _UNSUPPORTED:
            raise NotImplementedError(f"{func} is a CUDA-only kernel that tests/fake_device.py does not "
                                      "emulate; only whole nn.LSTM/GRU/RNN calls are routed to the CPU")
        if torch.Tag.inplace_view in func.tags:
            raise NotImplementedError(f"{func}: in-place view ops are not supported by tests/fake_device.py")
        _check_devices(func, args, kwargs)
        if device is not None and device.type == "cuda" and not 0 <= device.index < self.devices:
            raise RuntimeError(f"CUDA error: invalid device ordinal ({device}; "
                               f"fake_cuda(devices={self.devices}))")
        where, given = _device_argument(func, args, kwargs)
        plain_args, plain_kwargs = tree_map(_unwrap, (list(args), dict(kwargs)))
        if given is not None:  # run on the CPU what was asked of CUDA
            if where == "device":
                plain_kwargs["device"] = CPU
            else:
                plain_args[where] = CPU
        result = func(*plain_args, **plain_kwargs)
        if device is None or device.type == "cpu":
            return result
        # ops such as to() may return an input as is: on a new device that is a copy, else the input
        inputs = {id(_unwrap(a)): a for a in tree_flatten((args, kwargs))[0] if isinstance(a, torch.Tensor)}
        host_outputs = _HOST_ARGUMENTS.get(func, (None, ()))[1]
        aliases = _write_aliases(func)
        results = result if isinstance(result, tuple) else (result,)
        wrapped = []
        for i, r in enumerate(results):
            alias = aliases[i] if i < len(aliases) else None
            if alias is not None:
                original = args[alias] if alias < len(args) else kwargs[func._schema.arguments[alias].name]
                wrapped.append(original)
            elif isinstance(r, torch.Tensor) and id(r) in inputs:
                same = inputs[id(r)]
                wrapped.append(same if same.device == device else FakeCudaTensor(r.detach().clone(), device))
            elif isinstance(r, torch.Tensor) and i not in host_outputs:
                wrapped.append(FakeCudaTensor(r, device))
            elif isinstance(r, list):
                wrapped.append([FakeCudaTensor(t, device) if isinstance(t, torch.Tensor) else t for t in r])
            else:
                wrapped.append(r)
        return tuple(wrapped) if isinstance(result, tuple) else wrapped[0]


_VF = torch._C._VariableFunctions
_RNNS = {_VF.lstm, _VF.gru, _VF.rnn_tanh, _VF.rnn_relu, _VF.lstm_cell, _VF.gru_cell, _VF.rnn_tanh_cell,
         _VF.rnn_relu_cell}


def _cuda_index(device):
    """``"cuda"`` -> ``cuda:0``, as CUDA's current device would be; anything else unchanged."""
    if isinstance(device, torch.device) and device.type == "cuda" and device.index is None:
        return torch.device("cuda", 0)
    if isinstance(device, str) and device == "cuda":
        return "cuda:0"
    return device


def _run_rnn(func, args, kwargs):
    """A whole LSTM/GRU/RNN (or cell) call by the CPU implementation, results on the input's device.

    For a CUDA input aten would pick cuDNN or CUDA-only fused cells; the CPU implementation keeps
    results identical to the CPU's. Device rules first: everything on the input's device, except
    a packed sequence's ``batch_sizes`` (on the CPU)."""
    device = args[0].device
    packed = len(args) > 3 and isinstance(args[3], (list, tuple))  # (data, batch_sizes, hx, params, ...)
    for position, value in enumerate(args):
        for t in tree_flatten(value)[0]:
            if not isinstance(t, torch.Tensor):
                continue
            if packed and position == 1:
                if t.device.type != "cpu":
                    raise RuntimeError(f"batch_sizes should always be on CPU, got {t.device} "
                                       f"({func.__name__}) "
                                       "[raised by tests/fake_device.py, as real CUDA would]")
            elif t.device != device:
                raise RuntimeError(f"Input and parameter tensors are not at the same device, found input "
                                   f"tensor at {device} and parameter tensor at {t.device} ({func.__name__}) "
                                   "[raised by tests/fake_device.py, as real CUDA would]")
    # the CPU GRU takes another (equally valid) path when its weights require grad: keep the flag
    plain_args, plain_kwargs = tree_map(
        lambda t: t.inner.detach().requires_grad_() if isinstance(t, FakeCudaTensor) and t.requires_grad
        else _unwrap(t), (args, kwargs))
    # outside every mode: even a pass-through dispatch mode changes which GRU kernel runs in
    # inference mode (results differ in the last bit), and this must be the CPU's own kernel
    with _disable_current_modes():
        result = func(*plain_args, **plain_kwargs)
    if device.type == "cpu":
        return result
    return tree_map(lambda t: FakeCudaTensor(t, device) if isinstance(t, torch.Tensor) else t, result)


def _index_tensors(index) -> List[torch.Tensor]:
    return [t for t in tree_flatten(index)[0] if isinstance(t, torch.Tensor)]


def _check_index(self: torch.Tensor, index) -> None:
    """CUDA takes indices on the CPU or on the indexed tensor's device, nowhere else."""
    for t in _index_tensors(index):
        if t.device.type != "cpu" and t.device != self.device:
            raise RuntimeError(f"indices should be either on cpu or on the same device as the indexed "
                               f"tensor ({self.device}) [raised by tests/fake_device.py, as real CUDA would]")


def _getitem(self: torch.Tensor, index):
    _check_index(self, index)
    result = _unwrap(self)[tree_map(_unwrap, index)]
    return FakeCudaTensor(result, self.device) if isinstance(self, FakeCudaTensor) else result


def _setitem(self: torch.Tensor, index, value) -> None:
    """``self[index] = value``: basic indexing copies across devices (``copy_``), advanced indexing
    (``index_put_``) takes values on ``self``'s device or 0-dim ones, as CUDA does."""
    _check_index(self, index)
    advanced = isinstance(index, (list, torch.Tensor)) or (
        isinstance(index, tuple) and any(isinstance(i, (list, torch.Tensor)) for i in index))
    if isinstance(value, torch.Tensor) and value.device != self.device and value.dim() > 0 and advanced:
        raise _mixing_error("aten.index_put_", "values", value.device, self.device)
    _unwrap(self)[tree_map(_unwrap, index)] = _unwrap(value)


def _to_numpy(self: torch.Tensor, *args, **kwargs):
    raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() to copy the "
                    "tensor to host memory first. [raised by tests/fake_device.py, as real CUDA would]")


def _created_on_host(func):
    """``torch.tensor(data, device="cuda")``: built on the CPU, then moved (as torch does inside)."""
    def create(*args, **kwargs):
        device = kwargs.get("device")
        if device is None or torch.device(device).type != "cuda":
            return func(*args, **kwargs)
        return func(*args, **dict(kwargs, device=CPU)).to(device)
    return create


def _new_tensor(self: torch.Tensor, data, dtype=None, device=None, requires_grad=False, **kwargs):
    device = self.device if device is None else torch.device(device)
    out = _unwrap(self).new_tensor(_unwrap(data), dtype=dtype, device=CPU, **kwargs)
    return (out.to(device) if device.type == "cuda" else out).requires_grad_(requires_grad)


def _contiguous(self: torch.Tensor, memory_format=torch.contiguous_format):
    if self.is_contiguous(memory_format=memory_format):
        return self
    return aten.clone.default(self, memory_format=memory_format)


def _nonzero(self: torch.Tensor, *, as_tuple: bool = False):
    index = aten.nonzero.default(self)  # (nonzero, dim)
    return tuple(index.unbind(1)) if as_tuple else index


def _format(self: torch.Tensor, spec: str) -> str:
    return self.item().__format__(spec) if self.dim() == 0 else object.__format__(self, spec)


# Python-level tensor methods whose C++ bindings take a CUDA device guard or read host memory
# directly (impossible on a CPU-only build): done here on the CPU tensor inside, under CUDA's rules
_METHODS = {
    torch.Tensor.__getitem__: _getitem,
    torch.Tensor.__setitem__: _setitem,
    torch.Tensor.tolist: lambda self: self.inner.tolist(),
    torch.Tensor.numpy: _to_numpy,
    torch.Tensor.__array__: _to_numpy,
    torch.Tensor.__float__: lambda self: float(self.inner),
    torch.Tensor.__int__: lambda self: int(self.inner),
    torch.Tensor.__index__: lambda self: self.inner.__index__(),
    torch.Tensor.new_tensor: _new_tensor,
    torch.Tensor.__format__: _format,
    # bindings that take a device guard; the aten op itself (through the dispatcher) takes none
    torch.Tensor.__invert__: lambda self: aten.bitwise_not.default(self),
    torch.Tensor.contiguous: _contiguous,
    torch.Tensor.copy_: lambda self, src, non_blocking=False: aten.copy_.default(self, src, non_blocking),
    torch.Tensor.nonzero: _nonzero,
    torch.nonzero: _nonzero,
}
_HOST_READS = {torch.Tensor.__format__, torch.Tensor.tolist, torch.Tensor.numpy, torch.Tensor.__array__,
               torch.Tensor.__float__, torch.Tensor.__int__, torch.Tensor.__index__}
_FACTORIES = {f: _created_on_host(f) for f in (torch.tensor, torch.as_tensor)}


class _FakeCudaFunctions(TorchFunctionMode):
    """Gives ``"cuda"`` its index, routes RNN calls on fake tensors to the CPU kernels, and does
    indexing, ``tolist`` and ``torch.tensor`` where their C++ bindings would need real CUDA."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.device:
            return func(*args, **kwargs)
        fake = bool(args) and isinstance(args[0], FakeCudaTensor)
        if func in _RNNS:
            return _run_rnn(func, args, kwargs)
        if func is torch.Tensor.cuda:
            device = args[1] if len(args) > 1 else kwargs.pop("device", None)
            if device is None or isinstance(device, int):
                device = torch.device("cuda", device or 0)
            return args[0].to(_cuda_index(device), **{k: v for k, v in kwargs.items() if k == "non_blocking"})
        args, kwargs = tree_map(_cuda_index, (args, kwargs))
        if func in _METHODS and (fake or any(isinstance(t, FakeCudaTensor) for t in tree_flatten(args)[0])):
            if func in _HOST_READS and not fake:
                return func(*args, **kwargs)
            return _METHODS[func](*args, **kwargs)
        if func in _FACTORIES:
            return _FACTORIES[func](*args, **kwargs)
        return func(*args, **kwargs)


@contextlib.contextmanager
def fake_cuda(devices: int = 1) -> Iterator[None]:
    """Within the block, ``cuda:0`` .. ``cuda:{devices-1}`` exist and hold CPU data (see the module)."""
    saved = (torch.cuda.is_available, torch.cuda.device_count,
             torch.__future__.get_overwrite_module_params_on_conversion())
    torch.cuda.is_available = lambda: True
    torch.cuda.device_count = lambda: devices
    # code that takes real CUDA's paths on a CUDA build (pinned memory, streams, events) stays off them
    is_built = torch.backends.cuda.is_built
    torch.backends.cuda.is_built = lambda: False
    # Module.to() would otherwise assign a fake tensor to param.data, leaving a plain Parameter
    # that claims to be on CUDA but has no CPU tensor inside; new Parameters keep the subclass
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    # torch's modes are per thread, CUDA is not: work handed to a thread pool runs under the modes too
    submit = ThreadPoolExecutor.submit

    def submit_on_fake_cuda(pool, fn, /, *args, **kwargs):
        def run():
            with _FakeCudaFunctions(), _FakeCudaDispatch(devices):
                return fn(*args, **kwargs)
        return submit(pool, run)

    ThreadPoolExecutor.submit = submit_on_fake_cuda
    try:
        with _FakeCudaFunctions(), _FakeCudaDispatch(devices), warnings.catch_warnings():
            # nn.RNN asks cuDNN about CUDA weights; this torch has none, and says so each time
            warnings.filterwarnings("ignore", message="PyTorch was compiled without cuDNN")
            yield
    finally:
        torch.cuda.is_available, torch.cuda.device_count = saved[:2]
        torch.backends.cuda.is_built = is_built
        ThreadPoolExecutor.submit = submit
        torch.__future__.set_overwrite_module_params_on_conversion(saved[2])

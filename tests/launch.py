"""Start a function in N fresh CPU processes joined by gloo, as ``accelerate.debug_launcher`` does,
but spawned rather than forked: a forked copy of a test process inherits its thread pools and the
accelerate state of earlier tests, and can deadlock. ``fn`` must be importable (module level)."""
from __future__ import annotations

import os
import socket
import tempfile


def free_port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def launch(fn, args=(), num_processes: int = 2) -> None:
    from accelerate.utils import PrepareForLaunch, patch_environment
    from torch.multiprocessing import start_processes

    with tempfile.TemporaryDirectory() as tmp, patch_environment(
            world_size=num_processes, master_addr="127.0.0.1", master_port=free_port(),
            accelerate_mixed_precision="no", accelerate_debug_rdv_file=os.path.join(tmp, "rdv"),
            accelerate_use_cpu="yes", gloo_socket_ifname="lo", omp_num_threads="1",
            tokenizers_parallelism="false", hf_datasets_offline="1", hf_hub_offline="1"):
        start_processes(PrepareForLaunch(fn, debug=True), args=args, nprocs=num_processes, start_method="spawn")

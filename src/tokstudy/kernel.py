"""How the pipeline runs a notebook: papermill's nbclient engine, with the kernel on IPC sockets instead of TCP.

papermill's default kernel manager talks to the kernel over TCP on localhost without encryption, and
ipykernel says so on every start ("Kernel is running over TCP without encryption"). Local IPC sockets
need no network at all, so every DVC stage runs its notebook with ``papermill --engine tokstudy``
(registered in pyproject.toml under ``papermill.engine``). Nothing else changes: same kernel, same
execution, same outputs.

The sockets are files. jupyter_client names them ``kernel-ipc-<n>`` in the *working directory* unless told
otherwise, and removes them only when the kernel shuts down cleanly, so a stopped ``dvc repro`` left five
socket files in the repository root. :class:`IPCKernelManager` puts them in Jupyter's runtime directory
(``jupyter --runtime-dir``, private to the user) under a name of their own, never in the user's folder.
"""

from __future__ import annotations

import os
import uuid

from jupyter_client.manager import AsyncKernelManager
from jupyter_core.paths import jupyter_runtime_dir
from papermill.engines import NBClientEngine
from traitlets import default


class IPCKernelManager(AsyncKernelManager):
    """nbclient's kernel manager with ``transport = "ipc"``, its sockets in Jupyter's runtime directory."""

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"

    @default("ip")
    def _ip_default(self) -> str:
        runtime = jupyter_runtime_dir()
        os.makedirs(runtime, mode=0o700, exist_ok=True)
        return os.path.join(runtime, f"tokstudy-kernel-{uuid.uuid4().hex[:12]}-ipc")


class IPCEngine(NBClientEngine):
    """papermill's nbclient engine, starting the kernel with :class:`IPCKernelManager`."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        return super().execute_managed_notebook(nb_man, kernel_name, kernel_manager_class=IPCKernelManager,
                                                **kwargs)

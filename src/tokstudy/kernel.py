"""How the pipeline runs a notebook: papermill's nbclient engine, with the kernel on IPC sockets instead of TCP.

papermill's default kernel manager talks to the kernel over TCP on localhost without encryption, and
ipykernel says so on every start ("Kernel is running over TCP without encryption"). Local IPC sockets
(files in Jupyter's runtime dir, readable by this user only) need no network at all, so every DVC stage
runs its notebook with ``papermill --engine tokstudy`` (registered in pyproject.toml under
``papermill.engine``). Nothing else changes: same kernel, same execution, same outputs.
"""

from __future__ import annotations

from jupyter_client.manager import AsyncKernelManager
from papermill.engines import NBClientEngine
from traitlets import default


class IPCKernelManager(AsyncKernelManager):
    """nbclient's kernel manager with ``transport = "ipc"``."""

    @default("transport")
    def _transport_default(self) -> str:
        return "ipc"


class IPCEngine(NBClientEngine):
    """papermill's nbclient engine, starting the kernel with :class:`IPCKernelManager`."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, **kwargs):
        return super().execute_managed_notebook(nb_man, kernel_name, kernel_manager_class=IPCKernelManager,
                                                **kwargs)

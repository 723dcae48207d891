"""The nfs-ganesha configuration: every node's NFS root, exported to that node only.

nfs-ganesha is the user-space NFS server ``rpiaas netboot serve --nfs ganesha``
runs instead of the kernel's (which reads the ``exports`` file).  Its config
names everything it would otherwise take from the system: the recovery
directory lives in the serve state directory, not ``/var/lib/nfs/ganesha``;
NLM and RQUOTA are off (no rpc.statd, no port 875); NFSv4 skips its grace
period, so a client is served the moment the server is up rather than 90 s
later.  It still registers MOUNT and NFS with rpcbind, which must run first:
a Pi's kernel mounts its root with NFSv3 and asks rpcbind for the ports.

Access control, as read by nfs-ganesha 4.3: ``Access_Type = None`` on the
export denies everyone; the ``CLIENT`` block then grants the node's address
read-write without squashing root (a root file system has root-owned files).
A client not listed is refused at MOUNT (``MNT3ERR_ACCES``) and does not
even see the export in ``showmount -e``.
"""

from __future__ import annotations

from pathlib import Path

from .plan import NetbootPlan, NodeBoot

__all__ = ["GANESHA", "PID_FILE", "ganesha_command", "render_ganesha"]

GANESHA = "ganesha.nfsd"
PID_FILE = "ganesha.pid"


def _quote(text: str) -> str:
    if '"' in text or "\n" in text:
        raise ValueError(f"cannot be quoted in a ganesha config: {text!r}")
    return f'"{text}"'


def _export(export_id: int, node: NodeBoot) -> str:
    path = _quote(node.root_path)
    return "\n".join([
        f"# {node.name}",
        "EXPORT {",
        f"    Export_Id = {export_id};",
        f"    Path = {path};",
        f"    Pseudo = {path};",
        "    Protocols = 3, 4;",
        "    SecType = sys;",
        "    Access_Type = None;  # everyone else: nothing",
        "    FSAL {",
        "        Name = VFS;",
        "    }",
        "    CLIENT {",
        f"        Clients = {node.address};",
        "        Access_Type = RW;",
        "        Squash = No_Root_Squash;",
        "    }",
        "}",
    ])


def default_state_dir(plan: NetbootPlan) -> Path:
    """``DIR/state`` of a render into ``DIR`` (whose TFTP root is ``DIR/tftp``): serve's default."""
    return Path(plan.tftp_root).parent / "state"


def render_ganesha(plan: NetbootPlan, *, state_dir: str | Path | None = None,
                   source: str = "the cluster config") -> str:
    """The nfs-ganesha config of ``plan``: one export per node, numbered from 1 in plan order.

    ``state_dir`` (absolute; default :func:`default_state_dir`) holds the
    NFSv4 recovery directories; ganesha has no command-line option for them,
    so the config names it.  ``source`` is named in the header comment.
    """
    state = Path(state_dir) if state_dir is not None else default_state_dir(plan)
    if not state.is_absolute():
        raise ValueError(f"state directory: expected an absolute path, got {str(state)!r}")
    head = f"""\
# nfs-ganesha configuration of the rpiaas network boot, rendered by
# `rpiaas netboot render` from {source}.  Do not edit: render again.
# Run it with `rpiaas netboot serve --nfs ganesha` (rpcbind must be running).

NFS_CORE_PARAM {{
    Protocols = 3, 4;
    Bind_addr = {plan.server_ip};
    mount_path_pseudo = true;  # NFSv3 mounts the same path NFSv4 sees
    Enable_NLM = false;        # no rpc.statd: a root file system needs no locks across boots
    Enable_RQUOTA = false;
}}

NFSV4 {{
    Graceless = true;          # serve at once, not after a 90 s grace period
    RecoveryRoot = {_quote(str(state))};
}}

NFS_KRB5 {{
    Active_krb5 = false;
}}

LOG {{
    Default_Log_Level = EVENT;
}}
"""
    exports = "\n\n".join(_export(i, node) for i, node in enumerate(plan.nodes, start=1))
    return f"{head}\n{exports}\n" if exports else head


def ganesha_command(config_path: str | Path, state_dir: str | Path) -> list[str]:
    """nfs-ganesha in the foreground on ``config_path``, logging to stderr, its pid file in ``state_dir``."""
    return [GANESHA, "-F", "-L", "STDERR", "-f", str(Path(config_path).absolute()),
            "-p", str(Path(state_dir).absolute() / PID_FILE)]

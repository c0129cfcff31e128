"""A host-path CSI driver for the sandbox: real bytes in real directories, real snapshots.

Stand-in, and why: the upstream hostpath driver (``kubernetes-csi/csi-driver-host-path``)
is refused at every version by the Go module proxy this machine can reach, so it cannot
be built here. This process implements the same contract from the official CSI
specification (``csi.proto`` of ``github.com/container-storage-interface/spec``, read
from the Go module cache and compiled with ``grpcio-tools`` into the build cache), so the
real csi-provisioner, csi-snapshotter and snapshot-controller drive it exactly as they
would drive the hostpath driver:

* ``CreateVolume`` makes ``<statedir>/<volume id>``; with a snapshot content source it
  unpacks the snapshot archive into it (restore);
* ``CreateSnapshot`` archives the volume directory to ``<statedir>/<snapshot id>.snap``
  (``tar``, gzip) and is ready at once; ``DeleteVolume``/``DeleteSnapshot`` remove them.

Every call is idempotent by name, as the CSI spec requires. For failure tests, a volume
holding a file named ``.fluxup-fail-snapshot`` cannot be snapshotted (the driver answers
``INTERNAL``), and one holding ``.fluxup-slow-snapshot`` (containing seconds) is
snapshotted only after that delay. Run as
``python -m fluxup.sandbox.csidriver --endpoint unix://SOCK --statedir DIR``.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import logging
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
from concurrent import futures
from pathlib import Path
from types import ModuleType
from typing import Any

from fluxup.errors import SandboxError

__all__ = ["SPEC_MODULE", "SPEC_VERSION", "compile_spec", "main"]

SPEC_MODULE = "github.com/container-storage-interface/spec"
SPEC_VERSION = "v1.12.0"  # the version csi-provisioner is built against
FAIL_MARKER = ".fluxup-fail-snapshot"
SLOW_MARKER = ".fluxup-slow-snapshot"
log = logging.getLogger("fluxup.csidriver")


def compile_spec(out_dir: Path) -> Path:
    """Compile the CSI spec's ``csi.proto`` to Python modules in ``out_dir`` (once)."""
    from fluxup.sandbox.gobuild import module_dir

    target = out_dir / SPEC_VERSION
    if (target / "csi_pb2_grpc.py").exists():
        return target
    proto_dir = module_dir(SPEC_MODULE, SPEC_VERSION)
    target.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{proto_dir}",
            f"--python_out={target}",
            f"--grpc_python_out={target}",
            str(proto_dir / "csi.proto"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SandboxError(f"cannot compile csi.proto: {proc.stderr.strip()}")
    return target


def _load(generated: Path) -> tuple[ModuleType, ModuleType]:
    sys.path.insert(0, str(generated))
    return importlib.import_module("csi_pb2"), importlib.import_module("csi_pb2_grpc")


def _safe_id(name: str) -> str:
    """A directory-safe id from a CSI name (names are ``pvc-<uid>``/``snapshot-<uid>``)."""
    if name and all(c.isalnum() or c in "-_." for c in name) and not name.startswith("."):
        return name
    return hashlib.sha256(name.encode()).hexdigest()[:40]


def build_servicers(
    csi: ModuleType, rpc: ModuleType, statedir: Path, driver: str, version: str
) -> tuple[Any, Any]:
    """The Identity and Controller servicers over ``statedir``."""
    import grpc

    lock = threading.Lock()

    def meta(path: Path) -> dict[str, Any]:
        try:
            data: dict[str, Any] = json.loads(path.read_text())
            return data
        except (OSError, ValueError):
            return {}

    class Identity(rpc.IdentityServicer):  # type: ignore[misc,name-defined]
        def GetPluginInfo(self, request: Any, context: Any) -> Any:
            return csi.GetPluginInfoResponse(name=driver, vendor_version=version)

        def GetPluginCapabilities(self, request: Any, context: Any) -> Any:
            cap = csi.PluginCapability(
                service=csi.PluginCapability.Service(
                    type=csi.PluginCapability.Service.CONTROLLER_SERVICE
                )
            )
            return csi.GetPluginCapabilitiesResponse(capabilities=[cap])

        def Probe(self, request: Any, context: Any) -> Any:
            return csi.ProbeResponse()

    class Controller(rpc.ControllerServicer):  # type: ignore[misc,name-defined]
        def ControllerGetCapabilities(self, request: Any, context: Any) -> Any:
            rpc_type = csi.ControllerServiceCapability.RPC
            caps = [
                csi.ControllerServiceCapability(rpc=rpc_type(type=t))
                for t in (
                    rpc_type.CREATE_DELETE_VOLUME,
                    rpc_type.CREATE_DELETE_SNAPSHOT,
                    rpc_type.LIST_SNAPSHOTS,
                )
            ]
            return csi.ControllerGetCapabilitiesResponse(capabilities=caps)

        def ValidateVolumeCapabilities(self, request: Any, context: Any) -> Any:
            if not (statedir / _safe_id(request.volume_id)).is_dir():
                context.abort(grpc.StatusCode.NOT_FOUND, f"volume {request.volume_id} not found")
            return csi.ValidateVolumeCapabilitiesResponse(
                confirmed=csi.ValidateVolumeCapabilitiesResponse.Confirmed(
                    volume_capabilities=request.volume_capabilities
                )
            )

        def CreateVolume(self, request: Any, context: Any) -> Any:
            if not request.name:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name is required")
            volume_id = _safe_id(request.name)
            path = statedir / volume_id
            capacity = request.capacity_range.required_bytes or 1 << 20
            source = request.volume_content_source
            with lock:
                if not path.is_dir():
                    staging = statedir / f".{volume_id}.tmp"
                    shutil.rmtree(staging, ignore_errors=True)
                    staging.mkdir(parents=True)
                    if source.HasField("snapshot"):
                        archive = statedir / f"{_safe_id(source.snapshot.snapshot_id)}.snap"
                        if not archive.exists():
                            context.abort(
                                grpc.StatusCode.NOT_FOUND,
                                f"snapshot {source.snapshot.snapshot_id} not found",
                            )
                        with tarfile.open(archive, "r:gz") as tar:
                            tar.extractall(staging, filter="data")
                    staging.rename(path)
                    (statedir / f"{volume_id}.json").write_text(
                        json.dumps({"name": request.name, "capacity": capacity})
                    )
                    log.info("created volume %s (%d bytes)", volume_id, capacity)
            return csi.CreateVolumeResponse(
                volume=csi.Volume(
                    volume_id=volume_id, capacity_bytes=capacity, content_source=source
                )
            )

        def DeleteVolume(self, request: Any, context: Any) -> Any:
            volume_id = _safe_id(request.volume_id)
            with lock:
                shutil.rmtree(statedir / volume_id, ignore_errors=True)
                (statedir / f"{volume_id}.json").unlink(missing_ok=True)
            log.info("deleted volume %s", volume_id)
            return csi.DeleteVolumeResponse()

        def _snapshot(self, snapshot_id: str) -> Any:
            info = meta(statedir / f"{snapshot_id}.snap.json")
            created = info.get("created", time.time())
            return csi.Snapshot(
                size_bytes=int(info.get("size", 0)),
                snapshot_id=snapshot_id,
                source_volume_id=str(info.get("source", "")),
                creation_time={"seconds": int(created), "nanos": int(created % 1 * 1e9)},
                ready_to_use=True,
            )

        def CreateSnapshot(self, request: Any, context: Any) -> Any:
            if not request.name:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "name is required")
            snapshot_id = _safe_id(request.name)
            source = statedir / _safe_id(request.source_volume_id)
            archive = statedir / f"{snapshot_id}.snap"
            if (source / FAIL_MARKER).exists():
                context.abort(grpc.StatusCode.INTERNAL,
                              f"injected failure: {FAIL_MARKER} in volume {source.name}")
            slow = source / SLOW_MARKER
            if slow.exists() and not archive.exists():
                time.sleep(float(slow.read_text().strip() or "30"))
            with lock:
                if not archive.exists():
                    if not source.is_dir():
                        context.abort(
                            grpc.StatusCode.NOT_FOUND,
                            f"volume {request.source_volume_id} not found",
                        )
                    staging = archive.with_suffix(".tmp")
                    with tarfile.open(staging, "w:gz") as tar:
                        tar.add(source, arcname=".")
                    staging.rename(archive)
                    capacity = meta(statedir / f"{source.name}.json").get("capacity", 0)
                    (statedir / f"{snapshot_id}.snap.json").write_text(
                        json.dumps(
                            {
                                "source": request.source_volume_id,
                                "created": time.time(),
                                "size": capacity,
                            }
                        )
                    )
                    log.info("snapshot %s of %s", snapshot_id, source.name)
                else:
                    recorded = meta(statedir / f"{snapshot_id}.snap.json").get("source")
                    if recorded != request.source_volume_id:
                        context.abort(
                            grpc.StatusCode.ALREADY_EXISTS,
                            f"snapshot {request.name} exists for another volume",
                        )
            return csi.CreateSnapshotResponse(snapshot=self._snapshot(snapshot_id))

        def DeleteSnapshot(self, request: Any, context: Any) -> Any:
            snapshot_id = _safe_id(request.snapshot_id)
            with lock:
                (statedir / f"{snapshot_id}.snap").unlink(missing_ok=True)
                (statedir / f"{snapshot_id}.snap.json").unlink(missing_ok=True)
            return csi.DeleteSnapshotResponse()

        def ListSnapshots(self, request: Any, context: Any) -> Any:
            ids = sorted(p.name.removesuffix(".snap") for p in statedir.glob("*.snap"))
            if request.snapshot_id:
                ids = [i for i in ids if i == _safe_id(request.snapshot_id)]
            entries = [csi.ListSnapshotsResponse.Entry(snapshot=self._snapshot(i)) for i in ids]
            if request.source_volume_id:
                entries = [
                    e for e in entries if e.snapshot.source_volume_id == request.source_volume_id
                ]
            return csi.ListSnapshotsResponse(entries=entries)

    return Identity(), Controller()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", required=True, help="unix:///path/to/csi.sock")
    parser.add_argument("--statedir", required=True)
    parser.add_argument("--drivername", default="hostpath.csi.k8s.io")
    parser.add_argument("--nodeid", default="")
    parser.add_argument("--generated", required=True, help="where csi.proto is compiled to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    import grpc

    csi, rpc = _load(compile_spec(Path(args.generated)))
    statedir = Path(args.statedir)
    statedir.mkdir(parents=True, exist_ok=True)
    socket = Path(args.endpoint.removeprefix("unix://"))
    socket.unlink(missing_ok=True)
    identity, controller = build_servicers(csi, rpc, statedir, args.drivername, "0.1.0")
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    rpc.add_IdentityServicer_to_server(identity, server)
    rpc.add_ControllerServicer_to_server(controller, server)
    server.add_insecure_port(f"unix://{socket}")
    server.start()
    log.info("CSI driver %s serving on %s (state in %s)", args.drivername, socket, statedir)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=5).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())

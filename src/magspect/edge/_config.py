"""``station.yaml``: one validated settings object, and the factory that builds a Station from it.

Nothing is created at import time; :func:`build_station` makes the camera, the Inspector, the
record sink and the outputs from a :class:`StationConfig`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt

from magspect.types import Tta


class _Cfg(BaseModel):
    model_config = ConfigDict(extra="forbid")


Views = tuple[Literal["top", "side"], ...]


class SimCamera(_Cfg):
    kind: Literal["sim"] = "sim"
    rate_hz: PositiveFloat = 5.0
    n_parts: PositiveInt | None = None
    defect_rate: float = Field(0.3, ge=0, le=1)
    out_of_tolerance_rate: float = Field(0.05, ge=0, le=1)
    size_px: int = Field(1024, ge=64, le=8192)
    seed: int = 0
    prerender: int = Field(0, ge=0)
    backlight: bool = True
    lanes: PositiveInt = 1
    # the front light of every view; unset: drawn per view among the three, as magsynth-v2 does
    lighting: Literal["coaxial", "dome", "darkfield"] | None = None


class FolderCamera(_Cfg):
    kind: Literal["folder"]
    path: Path
    views: Views = ("top", "side")
    um_per_px: PositiveFloat | dict[str, PositiveFloat]
    settle_s: float = Field(0.2, ge=0)


class OpenCvCamera(_Cfg):
    kind: Literal["opencv"]
    uri: str | int
    views: Views = ("top",)
    um_per_px: PositiveFloat | dict[str, PositiveFloat]


class AravisCameraCfg(_Cfg):
    kind: Literal["aravis"]
    device_id: str | None = None
    views: Views = ("top",)
    um_per_px: PositiveFloat | dict[str, PositiveFloat]


CameraCfg = Annotated[SimCamera | FolderCamera | OpenCvCamera | AravisCameraCfg, Field(discriminator="kind")]


class ModelCfg(_Cfg):
    """``kind: bundled`` (the packaged model), ``path`` (an exported ONNX), ``promoted`` (the model
    promoted in the registry at ``registry``, default ``magspect models``' folder), ``truth``
    (simulated line only: the generator's masks stand in for a model)."""

    kind: Literal["bundled", "path", "promoted", "truth"] = "bundled"
    path: Path | None = None
    registry: Path | None = None
    int8: bool = False  # FP32: faster than INT8 on 2 CPU cores, and INT8 loses 2-3 points of recall (MODEL_CARD)
    threads: PositiveInt | None = None  # onnxruntime intra-op threads (default: all cores)
    providers: list[str] | None = None
    max_batch_images: PositiveInt = 8  # batching when behind: model calls of waiting parts merged up to this
    spin: bool = False  # onnxruntime pool threads sleep while idle: 7.8 vs 5.7 parts/s (BENCHMARKS.md "Camera station")
    # the look-alike verifier: an ONNX file, "darkfield" (the bundled one for a station that lights its
    # views with dark-field light only), "none", or unset for the bundled one when it fits the model
    verifier: Path | Literal["none", "darkfield"] | None = None
    # its review band (unsure kept defects send the part to REVIEW): unset = the verifier's own; 0 = none,
    # for a line with nobody to review
    review_below: float | None = Field(default=None, ge=0.0, le=1.0)
    # N: inspections run in N worker processes, each with its own Inspector (the pipeline's Python steps
    # hold the GIL, so threads alone leave cores idle: about 1.2x the parts/s, BENCHMARKS.md "Camera
    # station"); 0: in the station's own process (its `workers` threads). Unset: as many as `workers`,
    # or 0 for kind "truth" (which runs in the station's process only).
    processes: int | None = Field(None, ge=0, le=64)
    # test-time augmentation: logits averaged over mirrored views ("hflip": 2 model runs per view, a fifth
    # fewer false calls but more escapes on the test suite; "flips": 4). See BENCHMARKS.md; off by default
    tta: Tta = "none"
    # the coating-flaw subtype classifier: an ONNX file, "none" (every coating flaw not shaped like a
    # scratch judged as the strictest subtype), or unset for the bundled one when it fits the model
    subtypes: Path | Literal["none"] | None = None


class RecordsCfg(_Cfg):
    enabled: bool = True
    data_dir: Path | None = None  # local SQLite records and kept images (default $XDG_DATA_HOME/magspect)
    central_url: str | None = None  # e.g. postgresql+psycopg://user:pw@host/db; spooled locally while down
    retry_s: PositiveFloat = 2.0
    keep_images: bool = True  # images of rejected parts kept with their record


class OpcUaCfg(_Cfg):
    enabled: bool = False
    endpoint: str = "opc.tcp://127.0.0.1:4840/magspect/"


class MqttCfg(_Cfg):
    enabled: bool = False
    host: str = "127.0.0.1"
    port: PositiveInt = 1883
    topic_prefix: str | None = None  # default magspect/<station name>


class StationConfig(_Cfg):
    name: str = "station-1"
    spec: str
    deadline_ms: PositiveFloat = 1500.0
    queue_size: PositiveInt = 8
    workers: PositiveInt = 2
    camera: CameraCfg = Field(default_factory=SimCamera)
    model: ModelCfg = Field(default_factory=ModelCfg)
    records: RecordsCfg = Field(default_factory=RecordsCfg)
    opcua: OpcUaCfg = Field(default_factory=OpcUaCfg)
    mqtt: MqttCfg = Field(default_factory=MqttCfg)
    meta: dict[str, str] = Field(default_factory=dict)  # PartMeta lot fields: melt_lot, sinter_lot, ...
    status_period_s: PositiveFloat = 1.0
    health_file: Path | None = None  # JSON snapshot rewritten every status period (for a supervisor)

    @classmethod
    def from_yaml(cls, path: str | Path) -> StationConfig:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        return cls.model_validate(data)


def build_station(cfg: StationConfig, *, inspector: Any = None, on_record: Any = None) -> Any:
    """A ready (not started) Station from its config. ``inspector``: inject one (tests)."""
    from magspect.edge._sim import SimulatedLine, TruthSegmenter
    from magspect.edge._sources import AravisCamera, VideoCaptureCamera, WatchedFolder
    from magspect.inspect import Inspector

    cam_cfg = cfg.camera
    truth = TruthSegmenter() if cfg.model.kind == "truth" else None
    if truth is not None and cam_cfg.kind != "sim":
        raise ValueError("model kind 'truth' needs the simulated line (camera kind 'sim')")
    if truth is not None and cfg.model.tta != "none":
        raise ValueError("model kind 'truth' has no logits to average: set model.tta to none")
    if truth is not None and cfg.model.processes:
        raise ValueError("model kind 'truth' runs in the station's process: set model.processes to 0")
    processes = cfg.model.processes if cfg.model.processes is not None else (0 if truth is not None else cfg.workers)
    if cam_cfg.kind == "sim":
        camera: Any = SimulatedLine(cfg.spec, rate_hz=cam_cfg.rate_hz, n_parts=cam_cfg.n_parts,
                                    defect_rate=cam_cfg.defect_rate,
                                    out_of_tolerance_rate=cam_cfg.out_of_tolerance_rate,
                                    size_px=cam_cfg.size_px, seed=cam_cfg.seed, prerender=cam_cfg.prerender,
                                    backlight=cam_cfg.backlight, lanes=cam_cfg.lanes, segmenter=truth,
                                    lighting=cam_cfg.lighting)
    elif cam_cfg.kind == "folder":
        camera = WatchedFolder(cam_cfg.path, views=cam_cfg.views, um_per_px=cam_cfg.um_per_px,
                               settle_s=cam_cfg.settle_s)
    elif cam_cfg.kind == "opencv":
        camera = VideoCaptureCamera(cam_cfg.uri, views=cam_cfg.views, um_per_px=cam_cfg.um_per_px)
    else:
        camera = AravisCamera(cam_cfg.device_id, views=cam_cfg.views, um_per_px=cam_cfg.um_per_px)
    owns_inspector = inspector is None
    if inspector is None:
        m = cfg.model
        if truth is not None:
            inspector = Inspector(segmenter=truth)
        else:
            from magspect.inspect import bundled_model_path
            from magspect.inspect.procpool import InspectorSettings, ProcessInspector

            if m.kind == "promoted":
                from magspect.models.registry import promoted_model_path

                path = promoted_model_path(m.registry, int8=m.int8)
                if path is None:
                    raise ValueError(f"model kind 'promoted': no model is promoted in the registry {m.registry or ''}")
            else:
                path = m.path if m.kind == "path" else bundled_model_path(int8=m.int8)
            settings = InspectorSettings(
                model=Path(path), threads=m.threads, providers=tuple(m.providers) if m.providers else None,
                spin=m.spin, max_batch_images=m.max_batch_images,
                verifier=m.verifier, review_below=m.review_below, tta=m.tta,
                subtypes=m.subtypes,
            )
            inspector = ProcessInspector(settings, processes) if processes else settings.build()
    try:
        return _finish_station(cfg, camera, inspector, on_record, owns_inspector)
    except BaseException:
        if owns_inspector and hasattr(inspector, "close"):  # no worker processes left behind by a failed build
            inspector.close()
        raise


def _finish_station(cfg: StationConfig, camera: Any, inspector: Any, on_record: Any, owns_inspector: bool) -> Any:
    """Record sink, outputs and the Station around an already built camera and inspector."""
    from magspect.edge._records import RecordSink
    from magspect.edge._station import Station
    from magspect.store import RecordStore
    from magspect.types import Verdict

    cam_cfg = cfg.camera
    records = None
    if cfg.records.enabled:
        keep = (Verdict.REJECT,) if cfg.records.keep_images else ()
        local = RecordStore(data_dir=cfg.records.data_dir, keep_images_for=keep)
        records = RecordSink(local, central_url=cfg.records.central_url, retry_s=cfg.records.retry_s)
    outputs = []
    if cfg.opcua.enabled:
        from magspect.edge._opcua import OpcUaOutput

        lanes = cam_cfg.lanes if cam_cfg.kind == "sim" else 1
        outputs.append(OpcUaOutput(cfg.opcua.endpoint, lanes=lanes))
    if cfg.mqtt.enabled:
        from magspect.edge._mqtt import MqttOutput

        outputs.append(MqttOutput(cfg.mqtt.host, cfg.mqtt.port, topic_prefix=cfg.mqtt.topic_prefix,
                                  status_period_s=cfg.status_period_s))
    return Station(camera, inspector, cfg.spec, deadline_ms=cfg.deadline_ms, queue_size=cfg.queue_size,
                   workers=cfg.workers, records=records, outputs=outputs, station_name=cfg.name, meta=cfg.meta,
                   on_record=on_record, owns_inspector=owns_inspector)

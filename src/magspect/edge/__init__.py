"""The inline camera station: acquire, inspect and signal rejects at line speed, losing nothing.

No torch: cameras, the Inspector (ONNX), the reject-gate logic, OPC UA and the record store.

>>> from magspect.edge import StationConfig, build_station
>>> cfg = StationConfig(spec="def-blk-20x10x5-nicuni", model={"kind": "truth"},
...                     camera={"kind": "sim", "rate_hz": 20, "n_parts": 3, "size_px": 256},
...                     records={"enabled": False})
>>> station = build_station(cfg)
>>> station.start(); _ = station.wait_source_done(30); station.stop()
>>> c = station.counters; c.acquired == c.inspected + c.fail_safe == 3
True
"""

from magspect.edge._camera import Camera, CameraError, PartCapture, SourceExhausted
from magspect.edge._config import StationConfig, build_station
from magspect.edge._mqtt import MqttOutput
from magspect.edge._opcua import OpcUaOutput
from magspect.edge._records import Forwarder, RecordSink
from magspect.edge._sim import SimulatedLine, TruthSegmenter
from magspect.edge._sources import AravisCamera, VideoCaptureCamera, WatchedFolder, aravis_available
from magspect.edge._station import Counters, Decision, Output, Station
from magspect.inspect.batching import BatchingSegmenter

__all__ = [
    "AravisCamera",
    "BatchingSegmenter",
    "Camera",
    "CameraError",
    "Counters",
    "Decision",
    "Forwarder",
    "MqttOutput",
    "OpcUaOutput",
    "Output",
    "PartCapture",
    "RecordSink",
    "SimulatedLine",
    "SourceExhausted",
    "Station",
    "StationConfig",
    "TruthSegmenter",
    "VideoCaptureCamera",
    "WatchedFolder",
    "aravis_available",
    "build_station",
]

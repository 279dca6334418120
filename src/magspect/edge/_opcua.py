"""The PLC side over OPC UA (asyncua), after the OPC UA Machine Vision companion specification (OPC 40100).

Address space (namespace ``urn:magspect:station``), under ``Objects/<station name>``
(a ``MachineVisionSystem`` in OPC 40100's terms)::

    SystemState                    String  Initialized | ContinuousExecution | Halted | Error
    Heartbeat                      UInt32  +1 per second while the station runs
    Healthy                        Boolean every stage alive and ticking
    RecipeManagement/ActiveRecipe  String  the spec id (recipe = spec)
    RecipeManagement/SelectRecipe  Method  (String spec id) -> (Boolean ok, String message)
    ResultManagement/LastResult/   one result per part: ResultId (the serial), Sequence, Lane, Verdict,
                                   Reject, FailSafe, RecipeId, ProcessingTimeMs, Reason
    Lanes/<lane>/                  LastPartId, LastVerdict, Reject (the reject signal), Sequence
    ResultReadyEventType events    one per part, from the station object: PartId, Lane, Verdict, Reject,
                                   FailSafe, RecipeId, Sequence (subscribe instead of polling)
    Counters/                      Acquired, Inspected, FailSafe, DeadlineMisses, Passed, Rejected,
                                   Review, Recorded, QueueDepth (UInt32), PartsPerSecond (Double)

A PLC waits for ``Lanes/<lane>/Sequence`` to change and reads ``Reject`` with ``LastPartId``; the
``LastResult`` fields are written before its ``Sequence``, so a reader that sees the new sequence
sees that part's fields. The official nodeset (with its DI dependencies) is not loaded: the browse
names follow it so that a client written for OPC 40100 finds its way.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

log = logging.getLogger("magspect.edge")

NAMESPACE = "urn:magspect:station"
_COUNTERS = ("Acquired", "Inspected", "FailSafe", "DeadlineMisses", "Passed", "Rejected", "Review", "Recorded",
             "QueueDepth")
_COUNTER_KEYS = ("acquired", "inspected", "fail_safe", "deadline_misses", "passed", "rejected", "review",
                 "recorded", "queue_depth")


class OpcUaOutput:
    """An asyncua server on its own event-loop thread, updated by the station's output stage."""

    def __init__(self, endpoint: str = "opc.tcp://127.0.0.1:4840/magspect/", *, lanes: int = 1,
                 status_period_s: float = 0.5) -> None:
        self.endpoint = endpoint
        self.lanes = [str(i + 1) for i in range(lanes)]
        self.status_period_s = status_period_s
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._stop: asyncio.Event | None = None
        self.nodes: dict[str, Any] = {}
        self.station: Any = None

    # -- lifecycle (station thread) ----------------------------------------------------------
    def start(self, station: Any) -> None:
        try:
            import asyncua  # noqa: F401
        except ModuleNotFoundError as exc:
            raise RuntimeError("the OPC UA output needs asyncua: pip install 'magspect[edge]'") from exc
        self.station = station
        self._thread = threading.Thread(target=self._run, name="edge-opcua", daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the OPC UA server did not start within 30 s")
        if self._error is not None:
            raise RuntimeError(f"the OPC UA server failed to start on {self.endpoint}: {self._error}") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            fut = asyncio.run_coroutine_threadsafe(self._final(), self._loop)
            try:
                fut.result(5)
            except Exception:  # noqa: BLE001 - stopping anyway
                pass
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)

    def publish(self, decision: Any) -> None:
        """Queue the part's result on the server's loop (returns at once; writes stay in order)."""
        if self._loop is not None:
            asyncio.run_coroutine_threadsafe(self._write_result(decision), self._loop)

    # -- the server (its own thread) -----------------------------------------------------------
    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported to start()
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    async def _serve(self) -> None:
        from asyncua import Server, ua

        server = Server()
        await server.init()
        server.set_endpoint(self.endpoint)
        server.set_security_policy([ua.SecurityPolicyType.NoSecurity])  # a plant network; add certificates there
        server.set_server_name(f"magspect station {self.station.station_name}")
        idx = await server.register_namespace(NAMESPACE)
        self.idx = idx
        root = await server.nodes.objects.add_object(idx, self.station.station_name)

        async def var(parent, name, value, vtype):  # noqa: ANN001, ANN202
            node = await parent.add_variable(idx, name, value, varianttype=vtype)
            return node

        n = self.nodes
        n["SystemState"] = await var(root, "SystemState", self.station.state, ua.VariantType.String)
        n["Heartbeat"] = await var(root, "Heartbeat", 0, ua.VariantType.UInt32)
        n["Healthy"] = await var(root, "Healthy", True, ua.VariantType.Boolean)
        recipes = await root.add_object(idx, "RecipeManagement")
        n["ActiveRecipe"] = await var(recipes, "ActiveRecipe", self.station.spec_id, ua.VariantType.String)

        async def select_recipe(parent, spec_id):  # noqa: ANN001, ANN202
            try:
                self.station.set_recipe(spec_id.Value if hasattr(spec_id, "Value") else spec_id)
            except Exception as exc:  # noqa: BLE001 - answered to the caller, the recipe stays
                return [ua.Variant(False, ua.VariantType.Boolean), ua.Variant(str(exc), ua.VariantType.String)]
            await n["ActiveRecipe"].write_value(self.station.spec_id, ua.VariantType.String)
            return [ua.Variant(True, ua.VariantType.Boolean), ua.Variant("ok", ua.VariantType.String)]

        await recipes.add_method(idx, "SelectRecipe", select_recipe, [ua.VariantType.String],
                                 [ua.VariantType.Boolean, ua.VariantType.String])
        results = await root.add_object(idx, "ResultManagement")
        last = await results.add_object(idx, "LastResult")
        for name, value, vt in (("ResultId", "", ua.VariantType.String), ("Lane", "", ua.VariantType.String),
                                ("Verdict", "", ua.VariantType.String), ("Reject", False, ua.VariantType.Boolean),
                                ("FailSafe", False, ua.VariantType.Boolean), ("RecipeId", "", ua.VariantType.String),
                                ("ProcessingTimeMs", 0.0, ua.VariantType.Double), ("Reason", "", ua.VariantType.String),
                                ("Sequence", 0, ua.VariantType.UInt32)):
            n[f"LastResult/{name}"] = await var(last, name, value, vt)
        lanes = await root.add_object(idx, "Lanes")
        for lane in self.lanes:
            lo = await lanes.add_object(idx, lane)
            for name, value, vt in (("LastPartId", "", ua.VariantType.String),
                                    ("LastVerdict", "", ua.VariantType.String),
                                    ("Reject", False, ua.VariantType.Boolean),
                                    ("Sequence", 0, ua.VariantType.UInt32)):
                n[f"Lanes/{lane}/{name}"] = await var(lo, name, value, vt)
        self._etype = await server.create_custom_event_type(
            idx, "ResultReadyEventType", ua.ObjectIds.BaseEventType,
            [("PartId", ua.VariantType.String), ("Lane", ua.VariantType.String),
             ("Verdict", ua.VariantType.String), ("Reject", ua.VariantType.Boolean),
             ("FailSafe", ua.VariantType.Boolean), ("RecipeId", ua.VariantType.String),
             ("Sequence", ua.VariantType.UInt32)],
        )
        await root.set_event_notifier([ua.EventNotifier.SubscribeToEvents])
        self._events = await server.get_event_generator(self._etype, root)
        counters = await root.add_object(idx, "Counters")
        for name in _COUNTERS:
            n[f"Counters/{name}"] = await var(counters, name, 0, ua.VariantType.UInt32)
        n["Counters/PartsPerSecond"] = await var(counters, "PartsPerSecond", 0.0, ua.VariantType.Double)

        self._stop = asyncio.Event()
        async with server:
            self._ready.set()
            while not self._stop.is_set():
                await self._write_status()
                try:
                    await asyncio.wait_for(self._stop.wait(), self.status_period_s)
                except TimeoutError:
                    pass

    async def _w(self, key: str, value: Any, vtype: Any) -> None:
        from asyncua import ua

        await self.nodes[key].write_value(ua.Variant(value, vtype))

    async def _write_status(self) -> None:
        from asyncua import ua

        s = self.station.snapshot()
        await self._w("SystemState", s["state"], ua.VariantType.String)
        await self._w("Heartbeat", int(s["heartbeat"]), ua.VariantType.UInt32)
        await self._w("Healthy", bool(s["healthy"]), ua.VariantType.Boolean)
        await self._w("ActiveRecipe", s["recipe"], ua.VariantType.String)
        for name, key in zip(_COUNTERS, _COUNTER_KEYS, strict=True):
            await self._w(f"Counters/{name}", int(s[key]), ua.VariantType.UInt32)
        await self._w("Counters/PartsPerSecond", float(s["parts_per_s"]), ua.VariantType.Double)

    async def _final(self) -> None:
        await self._write_status()

    async def _write_result(self, d: Any) -> None:
        from asyncua import ua

        r = d.result
        reason = r.reasons[0].message if r.reasons else ""
        S, B = ua.VariantType.String, ua.VariantType.Boolean  # noqa: N806
        lane = d.lane if d.lane in self.lanes else self.lanes[0]
        await self._w(f"Lanes/{lane}/LastPartId", d.serial, S)
        await self._w(f"Lanes/{lane}/LastVerdict", r.verdict.value, S)
        await self._w(f"Lanes/{lane}/Reject", d.reject, B)
        await self._w("LastResult/ResultId", d.serial, S)
        await self._w("LastResult/Lane", lane, S)
        await self._w("LastResult/Verdict", r.verdict.value, S)
        await self._w("LastResult/Reject", d.reject, B)
        await self._w("LastResult/FailSafe", d.fail_safe, B)
        await self._w("LastResult/RecipeId", r.spec.id if r.spec else "", S)
        await self._w("LastResult/ProcessingTimeMs", float(d.latency_ms), ua.VariantType.Double)
        await self._w("LastResult/Reason", reason, S)
        await self._w("LastResult/Sequence", d.seq, ua.VariantType.UInt32)
        ev = self._events.event
        ev.PartId, ev.Lane, ev.Verdict, ev.Reject, ev.FailSafe = d.serial, lane, r.verdict.value, d.reject, d.fail_safe
        ev.RecipeId, ev.Sequence = (r.spec.id if r.spec else ""), d.seq
        await self._events.trigger(message=f"{d.serial}: {r.verdict.value}{' (fail-safe)' if d.fail_safe else ''}")
        await self._w(f"Lanes/{lane}/Sequence", d.seq, ua.VariantType.UInt32)

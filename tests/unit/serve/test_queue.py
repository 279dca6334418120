import asyncio
import time

import httpx
import pytest

from magspect.serve import ServeSettings, create_app
from magspect.serve._queue import InferenceQueue, QueueClosedError, QueueFullError
from magspect.serve.testing import FakeInspector, part_png


def test_queue_bounds_and_releases():
    async def main():
        q = InferenceQueue(workers=1, queue_size=1)
        jobs = [asyncio.create_task(q.run(time.sleep, 0.2)) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert q.depth == 2
        with pytest.raises(QueueFullError):
            await q.run(time.sleep, 0)
        await asyncio.gather(*jobs)
        assert q.depth == 0
        assert await q.run(lambda: 7) == 7
        q.shutdown()
        with pytest.raises(QueueClosedError):
            await q.run(lambda: 1)

    asyncio.run(main())


def test_queue_counts_a_job_until_its_thread_ends_even_if_the_caller_left():
    async def main():
        q = InferenceQueue(workers=1, queue_size=0)
        task = asyncio.create_task(q.run(time.sleep, 0.3))
        await asyncio.sleep(0.05)
        task.cancel()
        await asyncio.sleep(0.05)
        assert q.depth == 1  # still running in its thread
        with pytest.raises(QueueFullError):
            await q.run(time.sleep, 0)
        await asyncio.sleep(0.4)
        assert q.depth == 0
        q.shutdown()

    asyncio.run(main())


def test_full_queue_answers_503_with_retry_after(tmp_path):
    settings = ServeSettings(data_dir=tmp_path, workers=1, queue_size=1, retry_after_s=3)
    app = create_app(settings, inspector=FakeInspector(delay_s=0.4))
    files = {"top": ("t.png", part_png(), "image/png")}
    data = {"spec": "com-blk-20x10x5-zn", "um_per_px": "25"}

    async def main():
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as c:
                rs = await asyncio.gather(*(c.post("/v1/inspections", files=files, data=data) for _ in range(4)))
                metrics = (await c.get("/metrics")).text
        return rs, metrics

    rs, metrics = asyncio.run(main())
    codes = sorted(r.status_code for r in rs)
    assert codes == [201, 201, 503, 503]
    full = [r for r in rs if r.status_code == 503]
    assert all(r.headers["retry-after"] == "3" and r.json()["error"]["code"] == "queue_full" for r in full)
    assert "magspect_inference_queue_rejected_total 2.0" in metrics
    assert "magspect_inference_queue_capacity 2.0" in metrics

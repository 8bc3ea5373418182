"""The plugin's read batching: ids asked for while a batch is being read are read by the next batch."""

import asyncio
import threading
from pathlib import Path

from tests.support.memory_endpoint import FileDriver, Store
from virtplane.plugin.reads import Reads


class SlowDriver(FileDriver):
    """Reads by id only once released, so a test can ask for more while a read is under way."""

    def __init__(self, store: Store) -> None:
        super().__init__("VirtualMachine", store)
        self.started = threading.Event()
        self.release = threading.Event()

    def observe_ids(self, stack, ids, declared):
        self.started.set()
        assert self.release.wait(10)
        return super().observe_ids(stack, ids, declared)


async def _nothing():
    return {}


def test_an_id_asked_for_while_a_batch_is_being_read_gets_its_own_read(tmp_path: Path) -> None:
    store = Store(tmp_path / "h.json")
    first, second = (store.add("VirtualMachine", n, {"cpus": 1}, None) for n in ("a", "b"))
    driver = SlowDriver(store)
    reads = Reads()

    async def scenario():
        one = asyncio.ensure_future(reads.lookup(driver, "p/s", first, _nothing))
        while not driver.started.is_set():
            await asyncio.sleep(0.001)
        two = asyncio.ensure_future(reads.lookup(driver, "p/s", second, _nothing))
        await asyncio.sleep(0.05)
        driver.release.set()
        return await asyncio.wait_for(asyncio.gather(one, two), 10)

    loop = asyncio.new_event_loop()  # not asyncio.run: it would leave the thread without an event loop
    try:
        found = loop.run_until_complete(scenario())
    finally:
        loop.close()
    assert [live.id for live in found] == [first, second]
    assert [call[1:] for call in store.read()["calls"]] == [["observe_ids", 1], ["observe_ids", 1]]

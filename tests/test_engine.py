"""The local engine: many files in worker processes, and the pool that survives dying workers."""

from __future__ import annotations

import pytest
from helpers import (
    alive,
    broken_initializer,
    failed_item,
    segfault,
    square_or_die,
    square_or_segfault,
    square_slowly,
    write_music,
)

from music2emotion import predict_files
from music2emotion.engine import WorkerDied, WorkerPool, WorkersKeepDying, run_in_processes
from music2emotion.windows import OptionError

# every test here starts worker processes (each imports numpy, scipy and ONNX Runtime)
pytestmark = pytest.mark.slow


def test_worker_processes_match_one_process(model, tiny_model, tmp_path):
    paths = [write_music(tmp_path / f"{i:02d}.wav", 2.5 + i % 3, seed=i) for i in range(6)]
    paths.insert(3, tmp_path / "missing.wav")
    serial = list(predict_files(paths, model=model, timeline=True, jobs=1))
    parallel = list(predict_files(paths, model=tiny_model, timeline=True, jobs=2))
    assert [p.path for p in parallel] == [str(p) for p in paths]  # input order
    for a, b in zip(serial, parallel):
        assert (a.error, a.windows) == (b.error, b.windows)
        if a.ok:
            assert a.valence == pytest.approx(b.valence, abs=1e-5)
            assert len(b.timeline) == a.windows
    assert parallel[3].error == "file not found"


def test_bad_arguments_fail_before_any_file(model, tmp_path):
    path = write_music(tmp_path / "a.wav", 3.0)
    for options in ({"window_seconds": 0.2}, {"jobs": 0}, {"batch_size": 0}):
        with pytest.raises(OptionError):
            predict_files([path], model=model, **{"jobs": 2, **options})
    with pytest.raises(FileNotFoundError):
        predict_files([path], model=tmp_path / "none.onnx", jobs=2)


@pytest.mark.parametrize("ordered", [True, False])
def test_a_worker_that_dies_costs_only_its_own_item(ordered):
    items = list(range(9))
    got = list(run_in_processes(items, square_or_die, 2, failed_item, ordered=ordered))
    expected = [-1 if x == 3 else x * x for x in items]
    assert (got if ordered else sorted(got)) == (expected if ordered else sorted(expected))


def test_stopping_early_stops_the_workers():
    import multiprocessing as mp
    import time

    # children of this process started by other tests (a session's server and its workers)
    # are not this pool's
    others = {p.pid for p in mp.active_children()}
    results = run_in_processes(list(range(6)), square_slowly, 2, failed_item, ordered=False)
    assert next(results) == 0
    workers = [p.pid for p in mp.active_children() if p.pid not in others]
    assert workers
    t0 = time.monotonic()
    results.close()  # a consumer that breaks off, or Ctrl-C
    # ask the OS, not Process objects: the pool's own thread reaps the workers concurrently
    while any(alive(pid) for pid in workers) and time.monotonic() - t0 < 10:
        time.sleep(0.05)
    assert not any(alive(pid) for pid in workers)


def test_workers_that_never_start_stop_the_run():
    with pytest.raises(WorkersKeepDying):
        list(run_in_processes(list(range(6)), square_or_die, 2, failed_item,
                              initializer=broken_initializer))


def test_workers_that_keep_crashing_stop_the_run_with_one_error_naming_the_signal():
    rows = []
    with pytest.raises(WorkersKeepDying, match=r"SIGSEGV.*broken install or native library"):
        for r in run_in_processes(list(range(40)), segfault, 2, failed_item):
            rows.append(r)
    assert rows == []  # no row blames a file for the machine's problem


@pytest.mark.parametrize("ordered", [True, False])
def test_one_crashing_item_is_one_error_row(ordered):
    items = list(range(12))
    got = list(run_in_processes(items, square_or_segfault, 2, failed_item, ordered=ordered))
    expected = [-1 if x == 3 else x * x for x in items]
    assert (got if ordered else sorted(got)) == (expected if ordered else sorted(expected))


def test_a_pool_that_keeps_going_reports_crashing_workers():
    with WorkerPool(segfault, 1, stop_when_crashing=False) as pool:
        errors = [pool.submit(i).exception(timeout=60) for i in range(4)]
        assert all(isinstance(e, WorkerDied) and e.signum == 11 for e in errors)
        assert pool.crashing and "SIGSEGV" in pool.crashing
    with WorkerPool(square_or_segfault, 1, stop_when_crashing=False) as pool:
        assert [pool.submit(i).exception(timeout=60) is None for i in (3, 4, 3)] == [False, True, False]
        assert pool.crashing is None


@pytest.mark.slow
def test_worker_processes_keep_freed_memory_for_the_next_window(tmp_path):
    """glibc hands freed blocks back to the kernel and maps them afresh for the next window:
    a process that keeps them faults far less predicting the same files."""
    import subprocess
    import sys

    from helpers import write_music

    songs = [str(write_music(tmp_path / f"s{i}.wav", 30.0, channels=2, seed=i)) for i in range(3)]
    code = (
        "import resource, sys\n"
        "from music2emotion import EmotionModel\n"
        "from music2emotion.engine import keep_freed_memory\n"
        "if sys.argv[1] == 'keep': keep_freed_memory()\n"
        "m = EmotionModel('fast', threads=1); m.predict_file(sys.argv[2])\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "for f in sys.argv[2:]: m.predict_file(f)\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n")
    faults = {how: int(subprocess.run([sys.executable, "-c", code, how, *songs], capture_output=True, text=True,
                                      check=True).stdout) for how in ("plain", "keep")}
    # measured: 8,459 page faults against 1,753
    assert faults["keep"] * 3 < faults["plain"], faults


def _run_script(path, code: str):
    import subprocess
    import sys

    path.write_text(code)
    return subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120,
                          cwd=path.parent)


def test_a_script_without_the_main_guard_is_told_the_fix_in_one_line(tmp_path):
    """Spawned workers import the main module: a script that starts a pool at its top level
    starts one again in every worker. It must fail at once with the fix, not after three
    tries with a hint about the model and memory."""
    songs = [str(write_music(tmp_path / f"{i}.wav", 2.0, seed=i)) for i in range(2)]
    done = _run_script(tmp_path / "unguarded.py",
                       "from music2emotion import predict_files\n"
                       "print('top level')\n"
                       f"for result in predict_files({songs!r}, model='fast', jobs=2):\n"
                       "    print(result.row())\n")
    assert done.returncode == 1
    # the workers leave quietly (each after re-running the script's first lines)
    assert done.stderr.count("Traceback") == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("music2emotion.engine.WorkersKeepDying: worker processes cannot start")
    assert 'if __name__ == "__main__":' in last and "memory" not in last


def test_the_main_guard_message_holds_for_a_pool_started_in_a_thread(tmp_path):
    """As a server starts its workers: from a thread, whose errors the caller catches. The
    worker must still leave at once, so that the parent can tell why."""
    done = _run_script(tmp_path / "threaded.py",
                       "import threading\n"
                       "from music2emotion.engine import WorkerPool\n"
                       "def start():\n"
                       "    try:\n"
                       "        WorkerPool(abs, 1).wait_ready(60)\n"
                       "    except Exception as exc:\n"
                       "        print('caught:', exc)\n"
                       "thread = threading.Thread(target=start)\n"
                       "thread.start()\n"
                       "thread.join()\n")
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stdout.strip().splitlines()[-1].startswith("caught: worker processes cannot start")

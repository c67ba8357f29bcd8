"""How long a crashed stream-jobs worker waits before it runs again."""

from stream_jobs.worker import STEADY_S, restart_delay


def test_crashes_in_a_row_double_the_wait_up_to_half_a_minute():
    waits, crashes = [], 0
    for _ in range(8):
        crashes, wait_s = restart_delay(crashes, ran_s=3)
        waits.append(wait_s)
    assert waits == [1, 2, 4, 8, 16, 30, 30, 30]


def test_a_worker_that_ran_steadily_starts_its_backoff_afresh():
    assert restart_delay(6, ran_s=STEADY_S) == (1, 1)
    assert restart_delay(6, ran_s=STEADY_S - 1) == (7, 30)

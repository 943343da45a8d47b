"""The benchmark script stays runnable (timings themselves are not asserted)."""

from common.bench import main


def test_bench_runs_on_a_small_problem_and_labels_data_synthetic(capsys):
    main(["--n-users", "300", "--n-items", "120", "--repeats", "1"])
    out = capsys.readouterr().out
    assert out.startswith("SYNTHETIC")
    assert "full-ranking evaluation" in out and "BPR sampling" in out and "peak resident memory" in out

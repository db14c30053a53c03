"""Known answers for the Navigation2D by-distance table (benchmarks/navigation_by_distance)."""

import csv
import json

from benchmarks.navigation_by_distance import Adaptation, by_distance, main, read_adaptations


def write_evaluation(path, rows):
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["init", "task_id", "task", "update", "env_steps", "return"])
        for init, task_id, goal, update, value in rows:
            task = json.dumps({"family": "navigation2d", "goal_x": goal[0], "goal_y": goal[1]})
            writer.writerow([init, task_id, task, update, 0, value])


def test_curves_are_read_per_file_and_task_for_one_init(tmp_path):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    write_evaluation(
        first,
        [
            ("meta", 0, (0.3, 0.4), 0, -50.0),
            ("meta", 0, (0.3, 0.4), 1, -5.0),
            ("random", 0, (0.3, 0.4), 0, -99.0),
            ("random", 0, (0.3, 0.4), 1, -98.0),
        ],
    )
    write_evaluation(second, [("meta", 0, (0.1, 0.0), 1, -2.0), ("meta", 0, (0.1, 0.0), 0, -10.0)])
    adaptations = read_adaptations([first, second], "meta")
    # distance 0.5 (3-4-5 triangle); the updates come out in order whatever the rows' order.
    assert adaptations == [Adaptation(0.5, (-50.0, -5.0)), Adaptation(0.1, (-10.0, -2.0))]


def test_bands_average_their_curves_and_skip_empty_ones():
    adaptations = [
        Adaptation(0.1, (-10.0, -2.0)),
        Adaptation(0.15, (-20.0, -4.0)),
        Adaptation(0.45, (-40.0, -6.0)),
    ]
    rows = by_distance(adaptations, bands=(0.0, 0.2, 0.3, 0.5))
    assert rows == [(0.0, 0.2, 2, [-15.0, -3.0]), (0.3, 0.5, 1, [-40.0, -6.0])]


def test_the_table_counts_bad_adaptations(tmp_path, capsys):
    path = tmp_path / "adaptation.csv"
    rows = []
    for task_id, after in enumerate([-3.0, -5.0, -20.0]):
        rows += [("meta", task_id, (0.3, 0.0), 0, -30.0), ("meta", task_id, (0.3, 0.0), 1, after)]
    write_evaluation(path, rows)
    main([str(path)])
    out = capsys.readouterr().out
    assert "| 0.3-0.4 | 3 | -30.00 | -9.33 |" in out
    assert "1 of 3 worse than -8.0, the others average -4.00" in out

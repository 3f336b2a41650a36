"""The shared table of revisions behind read-your-writes across API-server workers."""

from __future__ import annotations

from flyteadmin.core.watermarks import Watermarks


def test_each_worker_sees_the_others_revisions_and_how_often_they_published(tmp_path):
    path = tmp_path / "marks"
    one = Watermarks(path, workers=3, kinds=4, create=True)
    two, three = Watermarks(path, 3, 4), Watermarks(path, 3, 4)
    one.worker, two.worker, three.worker = 0, 1, 2
    assert one.others_published() == (0, 0) and one.others(2) == 0

    two.publish(2, 10)
    assert one.others(2) == 10 and one.others(1) == 0 and two.others(2) == 0
    assert one.others_published() == (1, 0) and three.others_published() == (0, 1)
    assert two.others_published() == (0, 0)  # its own row is not among the others

    two.publish(2, 7)  # older than what it published: nothing new to wait for
    assert one.others(2) == 10 and one.others_published() == (1, 0)
    three.publish(2, 12)
    three.publish(3, 5)
    assert one.others(2) == 12 and one.others(3) == 5 and one.others_published() == (1, 2)
    for marks in (one, two, three):
        marks.close()

from churn.pipelines.scoring.nodes import score


def test_score_decreases_with_tenure():
    low, high = score([{"tenure": 1}, {"tenure": 9}])
    assert low["risk"] > high["risk"]

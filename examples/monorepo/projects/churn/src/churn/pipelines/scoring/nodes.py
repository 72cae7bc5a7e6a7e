def score(records):
    """A placeholder model: longer tenure, lower churn risk."""
    return [{**r, "risk": 1 / (1 + r.get("tenure", 0))} for r in records]

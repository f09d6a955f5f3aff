import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    """The daily counts of the chart are cached; every test starts from an empty cache."""
    cache.clear()
    yield
    cache.clear()

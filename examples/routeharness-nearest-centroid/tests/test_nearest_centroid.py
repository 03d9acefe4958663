"""The plugin's own tests: the routeharness conformance kit, one test per check."""

from routeharness_nearest_centroid.router import NearestCentroidRouter

from routeharness.testing import check_router, parametrize_with_checks


@parametrize_with_checks([NearestCentroidRouter(), NearestCentroidRouter(n_clusters=2)])
def test_conformance(router, check):
    check(router)


def test_check_router_all_at_once():
    results = check_router(NearestCentroidRouter(n_clusters=4))
    assert {r.status for r in results} <= {"passed", "skipped"}

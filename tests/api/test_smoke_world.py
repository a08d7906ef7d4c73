from tests.conftest import TODAY


def test_world_builds_and_agent_sees_its_day(world, client, auth):
    response = client.get(f"/api/v1/me/day?date={TODAY}", headers=auth.headers("agent1"))
    assert response.status_code == 200
    assert [v["id"] for v in response.json["visits"]] == [world.visits["v1"], world.visits["v2"]]

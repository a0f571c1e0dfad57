from tests.support import login


def test_healthz_checks_database(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok"}


def test_home_lists_events(client, factory):
    factory.ga_event(title="Spring Gala")
    response = client.get("/")
    assert response.status_code == 200
    assert "Spring Gala" in response.get_data(as_text=True)


def test_login_works(client, factory):
    user = factory.user()
    login(client, user.email)
    assert "Log out" in client.get("/").get_data(as_text=True)

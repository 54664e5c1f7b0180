"""The edge: TLS verified against the generated CA, HTTP -> HTTPS, HTTP/2, security headers, the SPA,
nginx's own errors as JSON."""

import json
import re
import socket
import ssl

import pytest
import requests

from contract import Api, assert_error, assert_security_headers, json_of
from harness.paths import REPO_ROOT
from harness.polling import until

SPA_DIR = REPO_ROOT / "services/nginx/spa"


def hashed_asset() -> str:
    # Sorted, and never a .gz twin: directory order differs between machines.
    asset = next(
        path
        for path in sorted((SPA_DIR / "assets").iterdir())
        if re.search(r"\.[0-9a-f]{8,}\.(?:js|css|svg)$", path.name)
    )
    return "/" + str(asset.relative_to(SPA_DIR))


def tls_connection(stack, **context_options):
    context = ssl.create_default_context(cafile=str(stack.ca_file))
    for name, value in context_options.items():
        setattr(context, name, value)
    raw = socket.create_connection(("localhost", stack.https_port), timeout=5)
    return context.wrap_socket(raw, server_hostname="localhost")


def test_https_verifies_against_the_generated_ca(stack):
    assert stack.get("/api/healthz").status_code == 200


def test_the_certificate_is_not_trusted_without_that_ca(stack):
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(stack.https + "/api/healthz", timeout=10)


def test_http_redirects_to_https_permanently_keeping_path_and_query(stack):
    response = requests.get(stack.http + "/profile?tab=2", allow_redirects=False, timeout=10)
    assert response.status_code == 308
    assert response.headers["Location"] == f"https://localhost:{stack.https_port}/profile?tab=2"


def test_http_serves_acme_challenges_without_redirecting(stack):
    response = requests.get(stack.http + "/.well-known/acme-challenge/missing-token", allow_redirects=False, timeout=10)
    assert response.status_code == 404


def test_the_edge_answers_its_own_health_check_on_both_servers(stack):
    for response in (
        requests.get(stack.http + "/edge-health", allow_redirects=False, timeout=10),
        stack.get("/edge-health"),
    ):
        assert (response.status_code, response.text) == (200, "ok\n")
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_http2_is_offered(stack):
    context = ssl.create_default_context(cafile=str(stack.ca_file))
    context.set_alpn_protocols(["h2", "http/1.1"])
    with (
        socket.create_connection(("localhost", stack.https_port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as connection,
    ):
        assert connection.selected_alpn_protocol() == "h2"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_modern_tls_versions_are_accepted_with_aead_ciphers(stack, version):
    with tls_connection(stack, minimum_version=version, maximum_version=version) as connection:
        assert connection.version() == version.name.replace("_", ".")
        cipher = connection.cipher()[0]
        assert "GCM" in cipher or "CHACHA20" in cipher, cipher


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1:DeprecationWarning")
def test_old_tls_versions_are_refused(stack):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(str(stack.ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1
    context.maximum_version = ssl.TLSVersion.TLSv1_1
    context.set_ciphers("ALL:@SECLEVEL=0")
    with socket.create_connection(("localhost", stack.https_port), timeout=5) as raw, pytest.raises(ssl.SSLError):
        context.wrap_socket(raw, server_hostname="localhost")


def test_security_headers_on_success_and_on_api_404(any_stack):
    assert_security_headers(any_stack.get("/api/healthz"))
    response = any_stack.get("/api/nope")
    assert_error(response, 404, "not_found")
    assert_security_headers(response)


def test_spa_root_and_deep_links_serve_index_revalidated(stack):
    index = (SPA_DIR / "index.html").read_text()
    for path in ["/", "/login", "/profile", "/admin/users"]:
        response = stack.get(path)
        assert response.status_code == 200, path
        assert response.text == index, path
        assert response.headers["Cache-Control"] == "no-cache", path
        assert_security_headers(response)


def test_hashed_asset_is_cached_for_a_year_immutable(stack):
    path = hashed_asset()
    response = stack.get(path)
    assert response.status_code == 200
    assert response.content == (SPA_DIR / path.lstrip("/")).read_bytes()
    assert response.headers["Cache-Control"] == "public, max-age=31536000, immutable"
    assert_security_headers(response)


def test_a_missing_hashed_asset_is_404_not_the_spa(stack):
    response = stack.get("/assets/app.0123456789.js")
    assert response.status_code == 404
    assert (SPA_DIR / "index.html").read_text() not in response.text


def test_unknown_api_path_is_a_json_404_not_the_spa(any_stack):
    assert_error(any_stack.get("/api/nope/deeper"), 404, "not_found")


def test_api_responses_are_compressed(stack):
    response = stack.get("/api/openapi.json", headers={"Accept-Encoding": "gzip"})
    assert response.headers.get("Content-Encoding") == "gzip"
    assert json_of(response)["openapi"].startswith("3.")


def test_request_id_is_passed_through_and_echoed(any_stack):
    response = any_stack.get("/api/healthz", headers={"X-Request-ID": "system-test-4711"})
    assert response.headers["X-Request-ID"] == "system-test-4711"
    assert until(lambda: "system-test-4711" in any_stack.logs("web"), timeout=10)


def test_nginx_413_is_json_with_headers(any_stack):
    response = any_stack.api().post(
        "/api/auth/register", data=b"x" * (1024 * 1024 + 1), headers={"Content-Type": "application/json"}
    )
    assert_error(response, 413, "payload_too_large")
    assert_security_headers(response)


def test_nginx_429_is_json_with_headers_and_retry_after(any_stack):
    session = any_stack.session()
    url = any_stack.https + "/api/auth/login"
    statuses = []
    for _ in range(60):
        response = session.post(url, json={})
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert 429 in statuses, statuses
    assert_error(response, 429, "rate_limited")
    assert_security_headers(response)
    assert response.headers["Retry-After"] == "1"


def test_readyz_reports_each_dependency(any_stack):
    body = json_of(any_stack.get("/api/readyz"))
    assert body["status"] == "ready"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["redis"]["status"] == "ok"


def methods(response) -> set[str]:
    return {method.strip() for method in response.headers["Allow"].split(",")}


def test_trace_on_an_api_route_is_the_apps_405_with_the_routes_own_methods(stack):
    response = stack.session().request("TRACE", stack.https + "/api/users/me", timeout=10)
    assert_error(response, 405, "method_not_allowed")
    assert methods(response) == {"GET", "HEAD", "OPTIONS"}
    assert_security_headers(response)


def test_options_on_an_api_route_lists_exactly_what_it_serves(stack):
    session = stack.session()
    # Patient: the sign-in route's budget at the edge (2 a second) may be spent by a test before.
    response = Api.patiently(lambda: session.options(stack.https + "/api/auth/login", timeout=10))
    assert response.status_code == 200
    assert methods(response) == {"POST", "OPTIONS"}


@pytest.mark.parametrize("method", ["POST", "DELETE", "TRACE"])
def test_a_method_a_static_path_does_not_serve_is_json_405_with_allow(stack, method):
    response = stack.session().request(method, stack.https + "/index.html", timeout=10)
    assert_error(response, 405, "method_not_allowed")
    assert methods(response) == {"GET", "HEAD"}
    assert_security_headers(response)


def test_a_request_line_too_long_for_nginx_is_json_414_with_hsts(stack):
    response = stack.get("/api/" + "a" * 7000)
    assert_error(response, 414, "uri_too_long")
    assert_security_headers(response)  # decided before any location: HSTS must still be there


def test_a_header_too_large_for_nginx_is_json_431(stack):
    response = stack.get("/api/healthz", headers={"X-Big": "a" * 7000})
    assert_error(response, 431, "request_header_fields_too_large")
    assert_security_headers(response)


def test_over_http2_a_path_past_nginx_meets_gunicorns_limit_in_json_too(stack):
    """nginx measures an HTTP/2 header's compressed size, so a long path can pass it; gunicorn's own
    answer is JSON as well. (curl inside the nginx container speaks HTTP/2.)"""
    output, _, _ = stack.compose.exec_in_container(
        [
            "curl",
            "-s",
            "--http2",
            "--cacert",
            "/etc/nginx/certs/ca.pem",
            "-w",
            "\\n%{http_code}|%{http_version}|%{content_type}",
            "https://localhost:8443/api/" + "a" * 9000,
        ],
        service_name="nginx",
    )
    body, _, status_line = output.rpartition("\n")
    status, version, content_type = status_line.split("|")
    assert (status, version) == ("414", "2"), output[-500:]
    assert content_type.startswith("application/json")
    assert json.loads(body)["error"]["code"] == "uri_too_long"


def test_plain_http_sent_to_the_https_port_is_json_400(stack):
    response = requests.get(f"http://localhost:{stack.https_port}/api/healthz", timeout=10)
    assert_error(response, 400, "bad_request")


def test_a_refused_method_on_hooks_with_the_hook_not_running_is_json_502(stack):
    response = stack.session().request("TRACE", stack.https + "/hooks/github", timeout=10)
    assert_error(response, 502, "service_unavailable")


def test_the_dev_ports_listen_on_this_machine_only(stack):
    """The development secrets are public: a stack reachable from the network would let anyone on
    it mint an admin's token. PUBLISH_ADDRESS opens it on purpose."""
    bindings = stack.container("nginx").attrs["HostConfig"]["PortBindings"]
    assert {binding["HostIp"] for ports in bindings.values() for binding in ports} == {"127.0.0.1"}


def test_tls_meets_mozillas_intermediate_profile_but_for_trusting_the_dev_ca(stack):
    """sslyze's check of Mozilla's "intermediate" configuration: everything holds except that the
    development CA is in no public trust store (the one thing a dev stack cannot pass)."""
    from sslyze import Scanner, ServerNetworkLocation, ServerScanRequest
    from sslyze.mozilla_tls_profile.tls_config_checker import (
        MozillaTlsConfiguration,
        ServerNotCompliantWithTlsConfiguration,
        TlsConfigurationEnum,
        check_server_against_tls_configuration,
    )

    scanner = Scanner()
    scanner.queue_scans([ServerScanRequest(server_location=ServerNetworkLocation("localhost", stack.https_port))])
    (result,) = scanner.get_results()
    intermediate = MozillaTlsConfiguration.get(TlsConfigurationEnum.MOZILLA_INTERMEDIATE)
    with pytest.raises(ServerNotCompliantWithTlsConfiguration) as not_compliant:
        check_server_against_tls_configuration(result, intermediate)
    assert set(not_compliant.value.issues) == {"certificate_path_validation"}, not_compliant.value.issues


def test_the_dev_ca_signs_only_the_dev_names_and_its_key_is_gone(stack):
    ca = stack.compose.exec_in_container(
        ["openssl", "x509", "-noout", "-text", "-in", "/etc/nginx/certs/ca.pem"], service_name="nginx"
    )[0]
    assert "Name Constraints: critical" in ca and "DNS:localhost" in ca
    files = stack.compose.exec_in_container(["ls", "/etc/nginx/certs"], service_name="nginx")[0].split()
    assert "ca.key" not in files
    within_366_days = stack.compose_run(
        "exec", "-T", "nginx", "openssl", "x509", "-noout", "-checkend", str(366 * 86400),
        "-in", "/etc/nginx/certs/fullchain.pem", check=False,
    )  # fmt: skip
    assert within_366_days.returncode == 1 and "will expire" in within_366_days.stdout

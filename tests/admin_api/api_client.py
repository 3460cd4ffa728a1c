"""A client of the admin API for the tests: it calls an operation of the spec by its operationId
and checks every response against the spec (api_spec.check_response) before the test looks at it.
"""

import urllib.parse

import requests

import api_spec

REQUEST_TIMEOUT_S = 60  # an ASan build adding thousands of members is slow
DEFAULT = object()  # the admin key's Authorization header


class AdminClient:
    def __init__(self, base_url, admin_key):
        self.base_url = base_url
        self.admin_key = admin_key
        self.session = requests.Session()

    def call(self, operation_id, path=None, *, authorization=DEFAULT, headers=None, **kwargs):
        """Sends the operation (path: its path parameters; kwargs: json=, data=, params= as
        requests takes them) and returns the response once the spec allows it. authorization:
        the Authorization header to send instead of the admin key's, None for none."""
        op = api_spec.operation(operation_id)
        quoted = {k: urllib.parse.quote(v, safe=":@") for k, v in (path or {}).items()}
        all_headers = dict(headers or {})
        if authorization is DEFAULT:
            authorization = f"Bearer {self.admin_key}"
        if authorization is not None:
            all_headers["Authorization"] = authorization
        response = self.session.request(op.method, self.base_url + op.url_path(**quoted),
                                        headers=all_headers, timeout=REQUEST_TIMEOUT_S, **kwargs)
        api_spec.check_response(op, response)
        return response

    def ok(self, operation_id, path=None, status=200, **kwargs):
        """The JSON body of a call that must answer `status`."""
        response = self.call(operation_id, path, **kwargs)
        assert response.status_code == status, (
            f"{operation_id}: expected {status}{api_spec.exchange(response)}")
        return response.json()

    def error(self, operation_id, path=None, *, status, code, **kwargs):
        """The message of a call that must fail with this HTTP status and im.v1.Code name."""
        response = self.call(operation_id, path, **kwargs)
        answered = response.json().get("error", {}).get("code") if response.content else None
        assert (response.status_code, answered) == (status, code), (
            f"{operation_id}: expected {status} {code}{api_spec.exchange(response)}")
        return response.json()["error"]["message"]

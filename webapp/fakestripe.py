"""A fake Stripe for development and tests: `python -m webapp.fakestripe --port 8420`.

It is localstripe (a stateful fake Stripe server with a fake Stripe.js at
/js.stripe.com/v3/) on 127.0.0.1, with two things it lacks that the hold
page needs, both done as real Stripe does them:

- its Stripe.js has no `createPaymentMethod`: the script served here adds
  one that posts the card element's fields to /v1/payment_methods with the
  publishable key, which is what Stripe.js does;
- so the server takes that one call with a publishable key (`key=pk_...`)
  as Stripe's does, where localstripe otherwise wants the secret key.

It keeps its state in memory only (localstripe writes /tmp/localstripe.pickle
after each change, which two copies would overwrite for each other).
Webhooks are registered as localstripe does, by POST /_config/webhooks/<id>.
"""
from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path

from aiohttp import web
from localstripe import resources, server

CREATE_PAYMENT_METHOD = """
(function () {
  const originalStripe = Stripe;
  Stripe = function (apiKey, options) {
    const stripe = originalStripe(apiKey, options);
    stripe.createPaymentMethod = async function (data) {
      const element = data.card || (data.elements && data.elements.getElement('card'));
      const card = (element && element.value && element.value.card) || {};
      const body = new URLSearchParams({key: apiKey, type: 'card'});
      Object.keys(card).forEach(field => body.append('card[' + field + ']', card[field]));
      try {
        const response = await fetch(LOCALSTRIPE_BASE_API + '/v1/payment_methods', {method: 'POST', body});
        const answer = await response.json().catch(() => ({}));
        return response.status === 200 && !answer.error ? {paymentMethod: answer}
          : {error: answer.error || {message: 'The card was refused.'}};
      } catch (err) {
        return {error: {message: String(err)}};
      }
    };
    return stripe;
  };
})();
"""


def _script(request: web.Request) -> web.Response:
    original = (Path(server.__file__).parent / "localstripe-v3.js").read_text()
    return web.Response(text=original + CREATE_PAYMENT_METHOD, content_type="application/javascript")


@web.middleware
async def _publishable_payment_methods(request: web.Request, handler):
    """POST /v1/payment_methods with `key=pk_...` (Stripe.js's way), answered before localstripe's auth."""
    if request.method == "POST" and request.path == "/v1/payment_methods" and "Authorization" not in request.headers:
        data = dict(await server.get_post_data(request, remove_auth=False) or {})
        if not str(data.pop("key", "")).startswith("pk_"):
            return server.json_response({"error": {"message": "Unauthorized"}}, status=401)
        data.pop("payment_user_agent", None)
        try:
            created = resources.PaymentMethod._api_create(**data)
        except server.UserError as refused:
            return refused.to_response()
        return server.json_response(created._export())
    if request.path == "/js.stripe.com/v3/":
        return _script(request)
    return await handler(request)


def build_app() -> web.Application:
    resources.Store.dump_to_disk = lambda self: None  # type: ignore[method-assign]
    app = server.app
    if _publishable_payment_methods not in app.middlewares:
        app.middlewares.insert(0, _publishable_payment_methods)
    return app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m webapp.fakestripe")
    parser.add_argument("--port", type=int, default=8420)
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    print(f"Fake Stripe (localstripe) on http://{args.host}:{args.port}", flush=True)
    web.run_app(build_app(), sock=sock, print=None, handle_signals=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

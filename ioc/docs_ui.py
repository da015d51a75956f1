"""`/docs`: Swagger UI over `/openapi.json`, from files installed with the package (no CDN).

The Swagger UI 5 bundle and stylesheet come from the `fastapi-offline` distribution (a dependency in
pyproject.toml), served at `/docs/assets/`.  The page has no inline script or style: it loads
`/docs/init.js`, so the strict Content-Security-Policy of every page (ioc/security_headers.py:
`script-src 'self'`, `style-src 'self'`) holds here too.  The page is behind a sign-in like the wall
(viewer, ioc/pages.py), because it reads `/openapi.json` with the browser's session.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

ASSET_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon.png")
ASSETS_PATH = "/docs/assets"
INIT_PATH = "/docs/init.js"

DOCS_HTML = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>IOC API — Swagger UI</title>
<link rel="icon" type="image/png" href="{ASSETS_PATH}/favicon.png">
<link rel="stylesheet" href="{ASSETS_PATH}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-testid="swagger-ui"></div>
<script src="{ASSETS_PATH}/swagger-ui-bundle.js"></script>
<script src="{INIT_PATH}"></script>
</body>
</html>
""".encode()

INIT_JS = b"""// Starts Swagger UI on /openapi.json (read with this browser's session cookie).
window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  layout: "BaseLayout",
  presets: [SwaggerUIBundle.presets.apis],
  withCredentials: true,
  validatorUrl: null  // never send the document to an outside validator
});
"""


def assets_dir() -> Path:
    """The installed Swagger UI files (fastapi-offline's static folder)."""
    return Path(str(resources.files("fastapi_offline").joinpath("static")))


class DocsAssets(StaticFiles):
    """Only the Swagger UI files named in ASSET_FILES (the folder holds others)."""

    async def get_response(self, path: str, scope: dict) -> Response:
        if path not in ASSET_FILES:
            from fastapi import HTTPException

            raise HTTPException(status_code=404)
        response = await super().get_response(path, scope)
        response.headers["Cache-Control"] = "public, max-age=86400"
        return response


def docs_page() -> Response:
    return Response(DOCS_HTML, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-cache"})


def init_script() -> Response:
    return Response(INIT_JS, media_type="text/javascript; charset=utf-8", headers={"Cache-Control": "no-cache"})

// Starts Swagger UI on /docs from the packaged bundle (an external file: no inline script).
// The packaged Swagger UI reads OpenAPI 3.0 documents; Warden's is 3.1 and uses nothing
// 3.0 lacks for display, so the page labels its copy 3.0.3 (the /openapi.json stays as is).
"use strict";
window.addEventListener("DOMContentLoaded", async () => {
  const response = await fetch("/openapi.json", { credentials: "same-origin" });
  const spec = await response.json();
  spec.openapi = "3.0.3";
  window.ui = SwaggerUIBundle({
    spec,
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});

"""The MCP proxy (``warden mcp-proxy``): Warden between an MCP client and its MCP servers.

``proxy.ProxySession`` authorizes each JSON-RPC message (``mapping`` holds the COAZ-MCP
binding); ``stdio`` and ``http`` are the client-facing transports; ``upstream`` talks to the
servers; ``config`` reads the proxy's file.
"""

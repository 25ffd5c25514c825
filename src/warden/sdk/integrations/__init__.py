"""Agent-framework helpers (optional extras): ``langchain`` and ``openai_agents``.

Each imports its framework on use; install it yourself (``pip install langchain-core`` or
``pip install openai-agents``). ``@guard`` alone already works under both frameworks'
decorators; these helpers guard a tool object that already exists.
"""

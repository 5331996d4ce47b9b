"""The realistic vocabulary the synthetic generator draws from: providers, models, clients, tools.

Client names are the display strings Coder derives from the User-Agent; provider names are
configured provider rows, each routed through a runtime provider type (contract §1, §7).
"""

from __future__ import annotations

from dataclasses import dataclass

# Configured provider rows (name, type, display_name, icon) and the runtime provider each one
# routes through. Icons are paths of Coder's bundled static icons.
PROVIDERS: tuple[tuple[str, str, str, str], ...] = (
    ("anthropic", "anthropic", "Anthropic", "/icon/claude.svg"),
    ("openai", "openai", "OpenAI", "/icon/openai.svg"),
    ("azure", "azure", "Azure OpenAI", "/icon/azure.svg"),
    ("bedrock", "bedrock", "AWS Bedrock", "/icon/aws.svg"),
    ("openrouter", "openrouter", "OpenRouter", ""),
    ("copilot", "copilot", "GitHub Copilot", "/icon/github.svg"),
)
RUNTIME_PROVIDER: dict[str, str] = {
    "anthropic": "anthropic",
    "bedrock": "anthropic",
    "openai": "openai",
    "azure": "openai",
    "openrouter": "openai",
    "copilot": "copilot",
}
# The first model of each list is the one clients use most.
MODELS: dict[str, tuple[str, ...]] = {
    "anthropic": ("claude-sonnet-4-5", "claude-opus-4-1", "claude-3-5-haiku", "claude-haiku-4-5"),
    "bedrock": (
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "us.anthropic.claude-3-5-haiku-20241022-v1:0",
    ),
    "openai": ("gpt-5", "gpt-4.1", "gpt-5-mini", "o4-mini", "gpt-4.1-mini"),
    "azure": ("gpt-4.1", "gpt-5"),
    "openrouter": ("qwen/qwen3-coder", "moonshotai/kimi-k2", "openai/gpt-5"),
    "copilot": ("gpt-4.1", "claude-sonnet-4", "gpt-5-mini", "gemini-2.5-pro"),
}
# Models that stream reasoning blocks (recorded as model thoughts).
REASONING_PREFIXES = ("claude-sonnet-4", "claude-opus", "us.anthropic.claude-sonnet", "gpt-5", "o4")

ANY_PROVIDER = ("anthropic", "openai", "azure", "bedrock", "openrouter")


@dataclass(frozen=True)
class ClientProfile:
    """How a client behaves: its provider names, tools, and whether it sends a session id."""

    name: str | None
    weight: int
    provider_names: tuple[str, ...]
    tools: tuple[str, ...]
    sends_session_id: bool


_CLAUDE_TOOLS = ("Read", "Edit", "Bash", "Grep", "Glob", "Write", "TodoWrite")
_OPENAI_TOOLS = ("shell", "apply_patch", "update_plan", "read_file")
_COPILOT_TOOLS = ("read_file", "replace_string_in_file", "run_in_terminal", "file_search")
_EDITOR_TOOLS = ("read_file", "edit_file", "terminal", "grep", "list_directory")

CLIENTS: tuple[ClientProfile, ...] = (
    ClientProfile("Claude Code", 30, ("anthropic", "bedrock"), _CLAUDE_TOOLS, True),
    ClientProfile("Codex", 14, ("openai", "azure"), _OPENAI_TOOLS, True),
    ClientProfile("Cursor", 12, ANY_PROVIDER, _EDITOR_TOOLS, True),
    ClientProfile("GitHub Copilot (VS Code)", 10, ("copilot",), _COPILOT_TOOLS, True),
    ClientProfile("GitHub Copilot (CLI)", 4, ("copilot",), _COPILOT_TOOLS, True),
    ClientProfile("Zed", 6, ANY_PROVIDER, _EDITOR_TOOLS, True),
    ClientProfile("Kilo Code", 4, ANY_PROVIDER, _EDITOR_TOOLS, True),
    ClientProfile("OpenCode", 5, ANY_PROVIDER, _EDITOR_TOOLS, True),
    ClientProfile("Mux", 2, ("anthropic", "openai"), _EDITOR_TOOLS, False),
    ClientProfile("Coder Agents", 3, ("anthropic", "openai"), _CLAUDE_TOOLS, True),
    # Scripts and unrecognised user agents: no client, no session id.
    ClientProfile(None, 10, ("anthropic", "openai"), (), False),
)

# Injected MCP tools: (server_url, tool).
MCP_TOOLS: tuple[tuple[str, str], ...] = (
    ("https://coder.example.com/api/experimental/mcp/http", "coder_list_workspaces"),
    ("https://coder.example.com/api/experimental/mcp/http", "coder_create_workspace"),
    ("https://coder.example.com/api/experimental/mcp/http", "coder_workspace_bash"),
    ("https://api.githubcopilot.com/mcp/", "github_search_code"),
    ("https://api.githubcopilot.com/mcp/", "github_create_pull_request"),
    ("https://mcp.linear.app/mcp", "linear_get_issue"),
)
INVOCATION_ERRORS = (
    "MCP server returned 502 Bad Gateway",
    "tool call timed out after 30s",
    'invalid arguments: missing required property "workspace"',
    "context deadline exceeded",
)

PROMPTS = (
    "Fix the failing test in {file}",
    "Why does {file} panic when the config is empty?",
    "Add pagination to the list endpoint in {file}",
    "Refactor {file} to use dependency injection",
    "Write unit tests for {file}",
    "Explain what {file} does",
    "Rename the `{symbol}` function and update all callers",
    "The CI build fails with `{error}`. Can you fix it?",
    "Add a --dry-run flag to the CLI",
    "Summarise the changes in this branch for a PR description",
    "Make `{symbol}` handle timeouts and retries",
    "Upgrade the dependency and fix the breaking changes",
)
FILES = (
    "coderd/workspaces.go",
    "site/src/pages/WorkspacePage.tsx",
    "cli/server.go",
    "internal/cache/lru.go",
    "api/handlers/users.py",
    "src/lib/auth.ts",
    "pkg/retry/backoff.go",
    "scripts/release.sh",
)
COMMANDS = ("go test ./...", "pnpm lint", "make build", "git status", "pytest -q")
SYMBOLS = ("ParseConfig", "fetchWorkspaces", "newRetrier", "handleLogin", "BuildPlan")
ERRORS = (
    "undefined: ctx",
    "TypeError: cannot read properties of undefined",
    "exit status 2",
    "ModuleNotFoundError: No module named 'yaml'",
)
THOUGHTS = (
    "The user wants the test fixed; first I should read the test and the code under test.",
    "The error suggests a nil map; I will check where the config is initialised.",
    "I need to find every caller before renaming, so I will search the repository.",
    "Running the tests again will confirm the fix before I summarise.",
    "The retry loop has no upper bound; adding a max attempts option is the safest change.",
)

AVATAR_BASE = "https://avatars.githubusercontent.com/u/"

# Upstream failures recorded on an interception (AI Gateway era): (error_type, error_message)
# per runtime provider, as the providers' APIs name them.
UPSTREAM_ERRORS: dict[str, tuple[tuple[str, str], ...]] = {
    "anthropic": (
        ("rate_limit_error", "This request would exceed the rate limit for your organization."),
        ("overloaded_error", "Overloaded"),
        ("api_error", "Internal server error"),
    ),
    "openai": (
        ("rate_limit_exceeded", "Rate limit reached for requests per min (RPM)."),
        ("context_length_exceeded", "This model's maximum context length is 128000 tokens."),
        ("server_error", "The server had an error while processing your request."),
    ),
    "copilot": (("rate_limited", "Sorry, you have been rate-limited."),),
}
# The firewall logs the LLM call itself, then the workspace's egress: (proto, method, detail,
# allowed by this rule or None when blocked).
LLM_HOSTS: dict[str, str] = {
    "anthropic": "https://api.anthropic.com/v1/messages",
    "openai": "https://api.openai.com/v1/responses",
    "copilot": "https://api.githubcopilot.com/chat/completions",
}
EGRESS: tuple[tuple[str, str, str, str | None], ...] = (
    ("http", "GET", "https://api.github.com/repos/coder/coder/pulls", "domain=api.github.com"),
    ("http", "GET", "https://api.github.com/repos/coder/coder/contents/go.mod",
     "domain=api.github.com"),
    ("http", "GET", "https://registry.npmjs.org/lodash", "domain=registry.npmjs.org"),
    ("http", "GET", "https://proxy.golang.org/github.com/google/uuid/@v/list",
     "domain=proxy.golang.org"),
    ("http", "GET", "https://pypi.org:443/simple/pyyaml/", "domain=pypi.org"),
    ("http", "POST", "https://api.github.com/graphql", "domain=api.github.com"),
    ("dns", "", "github.com", "domain=github.com"),
    ("http", "POST", "https://pastebin.com/api/api_post.php", None),
    ("http", "GET", "https://raw.githubusercontent.com/someone/dotfiles/main/install.sh", None),
    ("http", "GET", "http://203.0.113.7:8080/payload", None),
    ("dns", "", "telemetry.example.net", None),
)  # fmt: skip

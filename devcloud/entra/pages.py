"""The HTML that a person sees at devcloud's Entra: sign-in, consent, errors."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode

from starlette.responses import HTMLResponse

STYLE = """
body{font-family:system-ui,sans-serif;background:#f2f2f2;margin:0}
main{max-width:440px;margin:48px auto;background:#fff;padding:32px 40px;box-shadow:0 2px 6px #0003}
h1{font-size:1.5rem;margin:0 0 16px}label{display:block;margin:12px 0 4px}
input[type=text],input[type=password],input[type=email]{width:100%;padding:8px;box-sizing:border-box}
button{margin-top:16px;padding:8px 20px;background:#0067b8;color:#fff;border:0;cursor:pointer}
button.secondary{background:#ccc;color:#000}.error{color:#a80000}.brand{color:#666;font-size:.85rem}
ul{padding-left:20px}code{word-break:break-all}
"""


def page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    html = (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f'<meta name="viewport" content="width=device-width"><style>{STYLE}</style></head>'
        f'<body><main><p class="brand">devcloud · Microsoft Entra ID</p>{body}</main></body></html>'
    )
    return HTMLResponse(html, status_code=status, headers={"Cache-Control": "no-store"})


def login(*, action: str, ctx: str, app_name: str, username: str = "", error: str = "") -> HTMLResponse:
    err = f'<p class="error" role="alert">{escape(error)}</p>' if error else ""
    return page(
        "Sign in to your account",
        f"""<h1>Sign in</h1><p>to continue to {escape(app_name)}</p>{err}
<form method="post" action="{escape(action)}">
<input type="hidden" name="ctx" value="{escape(ctx)}">
<label for="username">Email, phone, or Skype</label>
<input type="email" id="username" name="username" value="{escape(username)}" autocomplete="username" required autofocus>
<label for="password">Password</label>
<input type="password" id="password" name="password" autocomplete="current-password" required>
<button type="submit" id="idSIButton9">Sign in</button>
</form>""",
        status=200,
    )


def consent(
    *,
    action: str,
    ctx: str,
    app_name: str,
    user_upn: str,
    scopes: list[str],
    offer_tenant_wide: bool,
    admin_consent: bool,
) -> HTMLResponse:
    items = "".join(f"<li><code>{escape(s)}</code></li>" for s in scopes)
    if admin_consent:
        who = (
            "<p>Accepting grants these permissions to the app for <strong>all users in your organization</strong>.</p>"
        )
        box = '<input type="hidden" name="tenant_wide" value="on">'
    elif offer_tenant_wide:
        who = ""
        box = (
            '<p><input type="checkbox" id="tenant_wide" name="tenant_wide">'
            ' <label for="tenant_wide" style="display:inline">Consent on behalf of your organization</label></p>'
        )
    else:
        who, box = "", ""
    title = "Permissions requested" + (" · Accept for your organization" if admin_consent else "")
    return page(
        title,
        f"""<h1>{escape(title)}</h1><p><strong>{escape(app_name)}</strong> wants to:</p><ul>{items}</ul>
<p>Signed in as {escape(user_upn)}</p>{who}
<form method="post" action="{escape(action)}">
<input type="hidden" name="ctx" value="{escape(ctx)}">{box}
<button type="submit" name="action" value="accept" id="idBtn_Accept">Accept</button>
<button type="submit" name="action" value="cancel" class="secondary" id="idBtn_Back">Cancel</button>
</form>""",
    )


def error(message: str, *, title: str = "Sorry, but we're having trouble signing you in.") -> HTMLResponse:
    return page(title, f'<h1>{escape(title)}</h1><p class="error" role="alert">{escape(message)}</p>', status=400)


def approval_required(*, message: str, return_url: str) -> HTMLResponse:
    return page(
        "Need admin approval",
        f"""<h1>Need admin approval</h1><p class="error" role="alert">{escape(message)}</p>
<p><a href="{escape(return_url)}">Return to the application without granting consent</a></p>""",
        status=200,
    )


def form_post(redirect_uri: str, params: dict[str, str]) -> HTMLResponse:
    fields = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in params.items())
    return HTMLResponse(
        f'<!doctype html><html><body onload="document.forms[0].submit()">'
        f'<form method="post" action="{escape(redirect_uri)}">{fields}'
        f'<noscript><button type="submit">Continue</button></noscript></form></body></html>'
    )


def query(params: dict[str, str]) -> str:
    return urlencode(params)

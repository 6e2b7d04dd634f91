"""Handler for JoinSessionKeyring (runc does the same unless --no-new-keyring)."""
import errno

from pyrunc.errors import RuntimeFailure, oserror_text
from pyrunc.executor.base import handles
from pyrunc.plan.steps import JoinSessionKeyring

# possessor and user: all permissions; group and other: none
_PERM = 0x3F3F0000


@handles(JoinSessionKeyring)
def join_session_keyring(step, ctx):
    try:
        serial = ctx.sys.join_session_keyring(step.name)
        ctx.sys.keyring_setperm(serial, _PERM)
    except OSError as e:
        if e.errno == errno.ENOSYS:   # kernel without keys: nothing to isolate
            return
        raise RuntimeFailure(f"could not create session key: {oserror_text(e)}") from None

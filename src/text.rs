//! Text rules shared by several layers, with no dependencies of their own: the words of
//! full-text search (indexes and the query evaluator), display names and emails.

use crate::error::{Error, Result};

/// Longest display name of a schema, collection, user, team or API key, in characters.
pub const MAX_NAME_LEN: usize = 128;

/// Checks the display name of a `what` (schema, collection, user, team, key): 1 to
/// [`MAX_NAME_LEN`] characters. (A user's name may also be empty; its caller says so.)
pub(crate) fn check_name(what: &str, name: &str) -> Result<()> {
    if name.is_empty() || name.chars().count() > MAX_NAME_LEN {
        return Err(Error::InvalidArgument(format!(
            "{what} name must be 1 to {MAX_NAME_LEN} characters, not {}",
            name.chars().count()
        )));
    }
    Ok(())
}

/// Longest email, in bytes.
pub const MAX_EMAIL_LEN: usize = 254;

/// Lowercase runs of letters and digits: the words of full-text search.
pub(crate) fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

pub(crate) fn check_email(email: &str) -> Result<()> {
    // The messages do not quote the email: a password typed into the email field would
    // otherwise reach the caller's logs (and the server's).
    if email.len() > MAX_EMAIL_LEN {
        return Err(Error::InvalidArgument(format!(
            "invalid email: longer than {MAX_EMAIL_LEN} bytes"
        )));
    }
    let ok = !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && !domain.is_empty() && !domain.contains('@')
        });
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument(
            "invalid email: one @ with text on each side, no spaces or control characters".into(),
        ))
    }
}

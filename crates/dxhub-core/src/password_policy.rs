//! The password policy (等保 2.0: complexity requirements): at least
//! [`MIN_PASSWORD_CHARS`] characters from at least three of four classes (lower case,
//! upper case, digits, anything else), and not the login itself.

/// Minimum length, in characters (not bytes).
pub const MIN_PASSWORD_CHARS: usize = 10;
/// How many of the four character classes a password must use.
pub const MIN_CHARACTER_CLASSES: usize = 3;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordPolicyError {
    #[error("password is shorter than {min} characters")]
    TooShort { min: usize },
    #[error(
        "password must use at least {min} of: lower-case letters, upper-case letters, \
         digits, other characters"
    )]
    TooFewClasses { min: usize },
    #[error("password must not be the login")]
    EqualsLogin,
}

/// Check `password` for the user `login`.
pub fn check_password(login: &str, password: &str) -> Result<(), PasswordPolicyError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(PasswordPolicyError::TooShort {
            min: MIN_PASSWORD_CHARS,
        });
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password
            .chars()
            .any(|c| !c.is_lowercase() && !c.is_uppercase() && !c.is_ascii_digit()),
    ];
    if classes.iter().filter(|c| **c).count() < MIN_CHARACTER_CLASSES {
        return Err(PasswordPolicyError::TooFewClasses {
            min: MIN_CHARACTER_CLASSES,
        });
    }
    if password.trim().to_lowercase() == login.trim().to_lowercase() {
        return Err(PasswordPolicyError::EqualsLogin);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_long_passwords_with_three_classes() {
        assert_eq!(check_password("li.wei", "Correct-horse1"), Ok(()));
        assert_eq!(check_password("li.wei", "lowerUPPER12"), Ok(()));
        assert_eq!(check_password("li.wei", "lower-case-12"), Ok(()));
        assert_eq!(
            check_password("li.wei", "UPPER_CASE_X"),
            Err(PasswordPolicyError::TooFewClasses { min: 3 })
        );
        // non-ASCII letters without case count as "other"
        assert_eq!(check_password("li.wei", "心电图password1"), Ok(()));
    }

    #[test]
    fn rejects_short_passwords_counting_characters_not_bytes() {
        assert_eq!(
            check_password("li.wei", "Ab1!Ab1!A"),
            Err(PasswordPolicyError::TooShort { min: 10 })
        );
        assert_eq!(
            check_password("li.wei", "心电图心电图Ab1"),
            Err(PasswordPolicyError::TooShort { min: 10 })
        );
        assert_eq!(check_password("li.wei", "Ab1!Ab1!Ab"), Ok(()));
    }

    #[test]
    fn rejects_two_classes() {
        assert_eq!(
            check_password("li.wei", "abcdefghij12"),
            Err(PasswordPolicyError::TooFewClasses { min: 3 })
        );
        assert_eq!(
            check_password("li.wei", "abcdefGHIJKL"),
            Err(PasswordPolicyError::TooFewClasses { min: 3 })
        );
    }

    #[test]
    fn rejects_the_login() {
        assert_eq!(
            check_password("Admin-Li2026", "admin-li2026"),
            Err(PasswordPolicyError::EqualsLogin)
        );
    }
}

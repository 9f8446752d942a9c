//! DICOM UID rules (PS3.5 §9).

/// Strip the trailing NUL/space padding a UID value may carry on the wire.
pub fn trim_uid(uid: &str) -> &str {
    uid.trim_end_matches(['\0', ' ']).trim_start()
}

/// A UID is valid when it is 1–64 characters of digits and dots, with no empty component
/// and no leading zero in a multi-digit component.
pub fn is_valid_uid(uid: &str) -> bool {
    if uid.is_empty() || uid.len() > 64 {
        return false;
    }
    uid.split('.').all(|c| {
        !c.is_empty()
            && c.bytes().all(|b| b.is_ascii_digit())
            && (c.len() == 1 || !c.starts_with('0'))
    })
}

/// A UID safe to use as one component of a storage key: valid, or at least made only of
/// digits and dots (some modalities send UIDs with leading zeros, which we keep).
pub fn is_key_safe_uid(uid: &str) -> bool {
    !uid.is_empty()
        && uid.len() <= 64
        && uid.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && !uid.starts_with('.')
        && !uid.contains("..")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids() {
        assert!(is_valid_uid("1.2.840.10008.1.2"));
        assert!(!is_valid_uid("1.2.840.010008"));
        assert!(!is_valid_uid("1..2"));
        assert!(!is_valid_uid("1.2.a"));
        assert!(!is_valid_uid(""));
        assert!(is_key_safe_uid("1.2.840.010008"));
        assert!(!is_key_safe_uid("../etc"));
        assert_eq!(trim_uid("1.2.3\0"), "1.2.3");
    }
}

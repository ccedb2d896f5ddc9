//! src/sys.rs against include/wschat.h: every function, callback type and
//! constant of the header is declared, with the header's error values,
//! and the library names and describes each error as the header's table
//! does.

use std::path::PathBuf;

fn read(rel: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {}", path.display(), e))
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Names of the functions the header declares with WSCHAT_EXTERN.
fn header_functions(header: &str) -> Vec<String> {
    let mut names = Vec::new();
    for (i, _) in header.match_indices("WSCHAT_EXTERN ") {
        if header[..i].ends_with("#define ") {
            continue;
        }
        let decl = &header[i..];
        let paren = decl.find('(').unwrap();
        let before = decl[..paren].trim_end();
        let start = before.rfind(|c: char| !is_ident(c)).map_or(0, |p| p + 1);
        names.push(before[start..].to_string());
    }
    names
}

/// Every WSCHAT_* identifier of the header that names a value.
fn header_constants(header: &str) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut rest = header;
    while let Some(i) = rest.find("WSCHAT_") {
        let ok_before = i == 0 || !is_ident(rest[..i].chars().last().unwrap());
        let tail = &rest[i..];
        let end = tail.find(|c: char| !is_ident(c)).unwrap_or(tail.len());
        let name = &tail[..end];
        rest = &tail[end..];
        let wildcard = rest.starts_with('*'); // "WSCHAT_E*" in prose
        let skip = [
            "WSCHAT_H",
            "WSCHAT_EXTERN",
            "WSCHAT_ERRNO_MAP",
            "WSCHAT_ERR_ENUM_",
        ];
        if ok_before
            && !wildcard
            && name.len() > 7
            && name[7..].chars().next().unwrap().is_ascii_uppercase()
            && name
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
            && !skip.contains(&name)
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_string());
        }
    }
    names
}

/// The error table: (NAME, value, message).
fn error_table(header: &str) -> Vec<(String, i32, String)> {
    let mut table = Vec::new();
    for line in header.lines() {
        let line = line.trim();
        if let Some(args) = line.strip_prefix("XX(") {
            let args = &args[..args.rfind(')').unwrap()];
            let mut parts = args.splitn(3, ',');
            let name = parts.next().unwrap().trim().to_string();
            let value = parts.next().unwrap().trim().parse().unwrap();
            let msg = parts.next().unwrap().trim().trim_matches('"').to_string();
            table.push((name, value, msg));
        }
    }
    table
}

#[test]
fn every_header_function_is_declared() {
    let header = read("../../include/wschat.h");
    let sys = read("src/sys.rs");
    let functions = header_functions(&header);
    assert!(functions.len() > 80, "parsed only {:?}", functions);
    let missing: Vec<&String> = functions
        .iter()
        .filter(|f| !sys.contains(&format!("pub fn {}(", f)))
        .collect();
    assert!(missing.is_empty(), "not in src/sys.rs: {:?}", missing);
}

#[test]
fn every_header_callback_type_is_declared() {
    let header = read("../../include/wschat.h");
    let sys = read("src/sys.rs");
    let mut types = Vec::new();
    for (i, _) in header.match_indices("(*wschat_") {
        let name = &header[i + 2..];
        types.push(name[..name.find(')').unwrap()].to_string());
    }
    assert!(types.len() >= 12, "parsed only {:?}", types);
    for t in &types {
        assert!(
            sys.contains(&format!("pub type {} =", t)),
            "{} not in src/sys.rs",
            t
        );
    }
}

#[test]
fn every_header_constant_is_declared() {
    let header = read("../../include/wschat.h");
    let sys = read("src/sys.rs");
    let constants = header_constants(&header);
    assert!(constants.len() >= 45, "parsed only {:?}", constants);
    let missing: Vec<&String> = constants
        .iter()
        .filter(|c| !sys.contains(&format!("pub const {}:", c)))
        .collect();
    assert!(missing.is_empty(), "not in src/sys.rs: {:?}", missing);
}

#[test]
fn error_values_names_and_messages_match_the_header() {
    let header = read("../../include/wschat.h");
    let sys = read("src/sys.rs");
    let table = error_table(&header);
    assert!(table.len() >= 19, "parsed only {:?}", table);
    for (name, value, msg) in &table {
        let decl = format!("pub const WSCHAT_{}: wschat_errno = {};", name, value);
        assert!(sys.contains(&decl), "src/sys.rs lacks {}", decl);
        let err = wschat::Error::from_code(*value);
        assert_eq!(err.name(), format!("WSCHAT_{}", name));
        assert_eq!(err.message(), msg);
    }
    assert_eq!(wschat::Error::from_code(-1).name(), "EPERM");
    assert_eq!(wschat::Error::from_code(-29999).name(), "UNKNOWN");
    assert_eq!(wschat::Error::from_code(-29999).message(), "unknown error");
}

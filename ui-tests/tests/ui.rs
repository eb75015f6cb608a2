//! Every macro diagnostic has a compile-fail case with a reviewed `.stderr`; every accepted
//! form has a compile-pass case.

#[test]
fn tool() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/tool/pass/*.rs");
    t.compile_fail("tests/ui/tool/fail/*.rs");
}

#[test]
fn workflow() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/workflow/pass/*.rs");
    t.compile_fail("tests/ui/workflow/fail/*.rs");
}

#[test]
fn agent() {
    let t = trybuild::TestCases::new();
    t.pass("tests/ui/agent/pass/*.rs");
    t.compile_fail("tests/ui/agent/fail/*.rs");
}

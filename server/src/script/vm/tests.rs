use super::*;

/// `math.random(100)` as redis-server 7.0 draws it: 40, 85, 36 from its initial
/// state, and 18, 75 after `math.randomseed(0)`.
#[test]
fn rand48_follows_redis() {
    let g = Rand48(Cell::new(0));
    let draw = |g: &Rand48| {
        let r = f64::from(g.next().rem_euclid(i32::MAX)) / f64::from(i32::MAX);
        (r * 100.0).floor() + 1.0
    };
    g.reset();
    assert_eq!([draw(&g), draw(&g), draw(&g)], [40.0, 85.0, 36.0]);
    g.seed(0);
    assert_eq!([draw(&g), draw(&g)], [18.0, 75.0]);
    assert_eq!(version_num("7.0.15"), 0x07000f);
}

/// mlua's panic for a state out of room for references is recognised (a replica lives
/// on after it), and another panic is not.
#[test]
fn the_interpreters_exhaustion_is_told_from_other_panics() {
    let lua = Lua::new();
    let panic = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let held: Vec<mlua::String> = (0..10_000)
            .map(|i| lua.create_string(format!("s{i}")).expect("string"))
            .collect();
        held.len()
    }))
    .expect_err("10,000 strings held from Rust exhaust Lua 5.1's room");
    assert!(exhausted(panic.as_ref()));
    let other = std::panic::catch_unwind(|| panic!("index out of bounds")).expect_err("panics");
    assert!(!exhausted(other.as_ref()));
}

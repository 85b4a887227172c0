//! The schema is embedded at build time (`sqlx::migrate!` in
//! src/store/db.rs), but cargo does not watch the files a macro reads: a
//! new migration would be left out of the sink until something else made
//! it rebuild. This tells cargo to rebuild when the migrations change.

fn main() {
    println!("cargo:rerun-if-changed=../mysql/migrations");
}

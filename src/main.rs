/// mimalloc instead of glibc's malloc: under load, glibc's arena locks and
/// consolidation cost a tenth of an authorised master's CPU (README,
/// "Performance and reliability").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    playgate::cli::main()
}

fn main() -> std::process::ExitCode {
    playgate::cli::main()
}

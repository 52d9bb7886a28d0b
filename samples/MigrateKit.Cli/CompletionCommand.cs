using System;
using System.CommandLine;
using System.Linq;

namespace MigrateKit.Cli;

/// <summary>
/// <c>migratekit completion bash|zsh</c>: a script that completes commands, options and option
/// values from System.CommandLine's own completions (<see cref="ParseResult.GetCompletions"/>),
/// which the script asks for through the hidden <c>complete</c> command, so no dotnet-suggest is needed.
/// </summary>
internal static class CompletionCommand
{
    private const string Bash = """
        # bash completion for migratekit: eval "$(migratekit completion bash)" in ~/.bashrc,
        # or save it as ~/.local/share/bash-completion/completions/migratekit
        _migratekit_complete() {
            local IFS=$'\n'
            local word="${COMP_WORDS[COMP_CWORD]}"
            COMPREPLY=($(compgen -W "$(migratekit complete --position "$COMP_POINT" -- "$COMP_LINE" 2>/dev/null)" -- "$word"))
        }
        complete -o default -F _migratekit_complete migratekit

        """;

    private const string Zsh = """
        #compdef migratekit
        # zsh completion for migratekit: eval "$(migratekit completion zsh)" in ~/.zshrc (after compinit),
        # or save it as _migratekit in a directory on $fpath
        _migratekit() {
            local -a completions
            completions=("${(@f)$(migratekit complete --position "$CURSOR" -- "$BUFFER" 2>/dev/null)}")
            compadd -a completions
        }
        compdef _migratekit migratekit

        """;

    /// <summary>The visible <c>completion</c> command and the hidden <c>complete</c> one its scripts call.</summary>
    internal static Command[] Create(Command root)
    {
        var shell = new Argument<string>("shell") { Description = "bash or zsh." };
        shell.AcceptOnlyFromAmong("bash", "zsh");
        var completion = new Command("completion", "Print a shell completion script for migratekit (bash or zsh).\n" +
            "Example: migratekit completion bash > ~/.local/share/bash-completion/completions/migratekit")
        {
            shell,
        };
        completion.SetAction(parse =>
        {
            Console.Out.Write(parse.GetValue(shell) == "zsh" ? Zsh : Bash);
            return 0;
        });

        var position = new Option<int?>("--position") { Description = "The cursor's offset in LINE; the default is its end." };
        var line = new Argument<string>("line") { Description = "The command line being typed, starting with migratekit." };
        var complete = new Command("complete", "The completions for a partly typed command line, one a line (called by the completion scripts).")
        {
            Hidden = true,
        };
        complete.Options.Add(position);
        complete.Arguments.Add(line);
        complete.SetAction(parse =>
        {
            string typed = parse.GetValue(line) ?? "";

            // A shell's cursor outside the line (it threw) completes at the nearer end.
            int at = Math.Clamp(parse.GetValue(position) ?? typed.Length, 0, typed.Length);
            foreach (string label in root.Parse(typed).GetCompletions(at).Select(c => c.Label).Distinct())
            {
                Console.Out.WriteLine(label);
            }

            return 0;
        });
        return [completion, complete];
    }
}

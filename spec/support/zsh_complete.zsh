# zsh -f spec/support/zsh_complete.zsh DIR CASE...: for each case (a command line), the words zsh's
# own completion system offers at its end (compinit, then the _hscode of DIR), as a line
# "CASE|w1 w2 ...". A zsh runs in a pseudo-terminal (zsh/zpty): TAB runs complete-word, and
# compadd is wrapped to print what it adds. Used by spec/integration/cli/completion_spec.lua.
zmodload zsh/zpty
local base=${fpath[(r)*/Completion/Base]}
# compinit reads only DIR and Base (fast), the other functions it needs are autoloaded by name
zpty z zsh -f -i
zpty -w z "PROMPT= ; fpath=(${(q)1} ${(q)base%/Base} ${(q)base}); autoload -U compinit; compinit -u -D"
zpty -w z "fpath+=(${(q)base%/Base}/{Unix,Zsh}); autoload -U _files _path_files _default"
zpty -w z "compadd() { local -a __h; builtin compadd -O __h \"\$@\";" \
  "(( \${#__h} )) && print -r -l -- '<<'\${^__h}'>>'; builtin compadd \"\$@\" }"
zpty -w z "_cap() { zle complete-word; print -r -- '@''@DONE' }; zle -N _cap; bindkey '^I' _cap; zstyle ':completion:*' menu no"
shift
local c out
local -a got
for c in "$@"; do
  zpty -w -n z "$c"$'\t'
  zpty -r z out '*@@DONE*'
  zpty -w -n z $'\C-u'
  got=(${(f)out})
  got=(${${(M)${got:#*__h*}:#*<<*>>*}#*<<})
  got=(${got%%>>*})
  print -r -- "$c|${(j: :)got}"
done
zpty -d z

{#- Raise a compile-time error that names the macro, the argument and the value received. -#}
{% macro _fail(macro_name, argument, problem, value) %}
  {{ exceptions.raise_compiler_error(
      macro_name ~ ": argument '" ~ argument ~ "' " ~ problem ~ "; got: " ~ (value | string)
      ~ " (" ~ (value.__class__.__name__ if value is not none else 'None') ~ ")") }}
{% endmacro %}

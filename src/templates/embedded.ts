// The default templates and partials, compiled into the binary as text (no files needed at run time).

import epilogue from "../../templates/partials/chasqui_epilogue.sh.hbs" with { type: "text" };
import modules from "../../templates/partials/chasqui_modules.sh.hbs" with { type: "text" };
import prologue from "../../templates/partials/chasqui_prologue.sh.hbs" with { type: "text" };
import pbsproVasp from "../../templates/pbspro-vasp.sh.hbs" with { type: "text" };
import slurmVasp from "../../templates/slurm-vasp.sh.hbs" with { type: "text" };
import torqueVasp from "../../templates/torque-vasp.sh.hbs" with { type: "text" };

/** Built-in templates by name; user files of the same name override them. */
export const EMBEDDED_TEMPLATES: Readonly<Record<string, string>> = Object.freeze({
  "pbspro-vasp": pbsproVasp,
  "torque-vasp": torqueVasp,
  "slurm-vasp": slurmVasp,
});

/** Built-in partials (`{{> NAME}}`) every template may include; user partials override them. */
export const EMBEDDED_PARTIALS: Readonly<Record<string, string>> = Object.freeze({
  chasqui_prologue: prologue,
  chasqui_modules: modules,
  chasqui_epilogue: epilogue,
});

export const TEMPLATE_SUFFIX = ".sh.hbs";

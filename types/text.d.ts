// Files imported `with { type: "text" }` (templates, remote shell scripts) are plain strings.
declare module "*.sh" {
  const text: string;
  export default text;
}
declare module "*.hbs" {
  const text: string;
  export default text;
}

/// HarmonyLite's version number: printed by `-version`, recorded in the schema registry.
public enum HarmonyLiteVersion {
    public static let number = "0.1.0"
}

/*
 * Prints, as JSON on stdout, what Strom's metadata codecs are generated from: every KRaft metadata record
 * and KRaft control record of the Kafka jars on the class path (api key, version range, and for each
 * version the field layout read from the generated class's SCHEMAS), plus the metadata.version levels and
 * the features with their levels and dependencies.
 *
 * Run by scripts/gen-metadata-records in Java's single-file source mode against the Maven Central jars
 * that scripts/fetch-tools downloads; it only reads public API (SCHEMAS, MetadataRecordType,
 * MetadataVersion, Feature) and each generated class's declared fields, which give the camelCase names
 * and defaults that the schemas do not carry.
 */

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.lang.reflect.ParameterizedType;
import java.lang.reflect.Type;
import java.util.ArrayList;
import java.util.Collection;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.kafka.common.Uuid;
import org.apache.kafka.common.metadata.MetadataRecordType;
import org.apache.kafka.common.protocol.ApiMessage;
import org.apache.kafka.common.protocol.Message;
import org.apache.kafka.common.protocol.types.BoundField;
import org.apache.kafka.common.protocol.types.CompactArrayOf;
import org.apache.kafka.common.protocol.types.Schema;
import org.apache.kafka.common.protocol.types.TaggedFields;
import org.apache.kafka.server.common.Feature;
import org.apache.kafka.server.common.FeatureVersion;
import org.apache.kafka.server.common.MetadataVersion;

public class DumpMetadataSchemas {
    // qualified struct name -> {"fields": {snake: {...}}, "versions": {v: {...}}}
    private final Map<String, Map<String, Object>> structs = new LinkedHashMap<>();

    public static void main(String[] args) throws Exception {
        System.out.println(json(new DumpMetadataSchemas().dump()));
    }

    private Map<String, Object> dump() throws Exception {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("kafka_version", org.apache.kafka.common.utils.internals.AppInfoParser.getVersion());
        List<Object> metadata = new ArrayList<>();
        for (MetadataRecordType type : MetadataRecordType.values()) {
            ApiMessage message = type.newMetadataRecord();
            Map<String, Object> rec = record(message.getClass(), type.lowestSupportedVersion(),
                type.highestSupportedVersion());
            rec.put("api_key", (int) type.id());
            rec.put("type_name", type.name());
            metadata.add(rec);
        }
        out.put("metadata_records", metadata);

        // The KRaft control records: ControlRecordType id, and the version Kafka writes today.
        Class<?> utils = Class.forName("org.apache.kafka.common.record.internal.ControlRecordUtils");
        Object[][] control = {
            {"LeaderChangeMessage", 2, "LEADER_CHANGE_CURRENT_VERSION", "LEADER_CHANGE"},
            {"SnapshotHeaderRecord", 3, "SNAPSHOT_HEADER_CURRENT_VERSION", "SNAPSHOT_HEADER"},
            {"SnapshotFooterRecord", 4, "SNAPSHOT_FOOTER_CURRENT_VERSION", "SNAPSHOT_FOOTER"},
            {"KRaftVersionRecord", 5, "KRAFT_VERSION_CURRENT_VERSION", "KRAFT_VERSION"},
            {"VotersRecord", 6, "KRAFT_VOTERS_CURRENT_VERSION", "KRAFT_VOTERS"},
        };
        List<Object> controls = new ArrayList<>();
        for (Object[] c : control) {
            Class<?> cls = Class.forName("org.apache.kafka.common.message." + c[0]);
            short low = cls.getField("LOWEST_SUPPORTED_VERSION").getShort(null);
            short high = cls.getField("HIGHEST_SUPPORTED_VERSION").getShort(null);
            Map<String, Object> rec = record(cls, low, high);
            rec.put("control_type", c[1]);
            rec.put("current_version", (int) utils.getField((String) c[2]).getShort(null));
            rec.put("type_name", c[3]);
            controls.add(rec);
        }
        out.put("control_records", controls);
        out.put("structs", structs);

        List<Object> versions = new ArrayList<>();
        for (MetadataVersion mv : MetadataVersion.VERSIONS) {
            Map<String, Object> v = new LinkedHashMap<>();
            v.put("name", mv.name());
            v.put("version", mv.version());
            v.put("feature_level", (int) mv.featureLevel());
            v.put("production", mv.isProduction());
            v.put("scram", mv.isScramSupported());
            v.put("register_broker_record_version", (int) mv.registerBrokerRecordVersion());
            v.put("partition_record_version", (int) mv.partitionRecordVersion());
            v.put("partition_change_record_version", (int) mv.partitionChangeRecordVersion());
            versions.add(v);
        }
        out.put("metadata_versions", versions);
        out.put("latest_production", MetadataVersion.LATEST_PRODUCTION.version());
        out.put("minimum_version", MetadataVersion.MINIMUM_VERSION.version());

        List<Object> features = new ArrayList<>();
        for (Feature feature : Feature.PRODUCTION_FEATURES) {
            Map<String, Object> f = new LinkedHashMap<>();
            f.put("name", feature.featureName());
            f.put("minimum_production", (int) feature.minimumProduction());
            f.put("latest_production", (int) feature.latestProduction());
            f.put("latest_testing", (int) feature.latestTesting());
            List<Object> levels = new ArrayList<>();
            for (FeatureVersion fv : feature.featureVersions()) {
                Map<String, Object> l = new LinkedHashMap<>();
                l.put("level", (int) fv.featureLevel());
                l.put("bootstrap_metadata_version", fv.bootstrapMetadataVersion().version());
                Map<String, Object> deps = new TreeMap<>();
                fv.dependencies().forEach((k, val) -> deps.put(k, (int) val));
                l.put("dependencies", deps);
                levels.add(l);
            }
            f.put("levels", levels);
            Map<String, Object> defaults = new LinkedHashMap<>();
            for (MetadataVersion mv : MetadataVersion.VERSIONS) {
                defaults.put(mv.version(), (int) feature.defaultLevel(mv));
            }
            f.put("default_levels", defaults);
            features.add(f);
        }
        out.put("features", features);
        return out;
    }

    private Map<String, Object> record(Class<?> cls, short low, short high) throws Exception {
        Schema[] schemas = (Schema[]) cls.getField("SCHEMAS").get(null);
        for (int v = low; v <= high; v++) {
            struct(cls.getSimpleName(), cls, v, schemas[v]);
        }
        Map<String, Object> rec = new LinkedHashMap<>();
        rec.put("name", cls.getSimpleName());
        rec.put("lowest", (int) low);
        rec.put("highest", (int) high);
        return rec;
    }

    // Kafka's schema names are the snake_case of the JSON spec's PascalCase names, a run of capitals
    // making one word ("KRaftVersion" is kraft_version); the Java field is that name with a lower-case
    // first letter.
    private static String snake(String camel) {
        String pascal = Character.toUpperCase(camel.charAt(0)) + camel.substring(1);
        StringBuilder b = new StringBuilder();
        boolean previousCapital = true;
        for (char ch : pascal.toCharArray()) {
            if (Character.isUpperCase(ch)) {
                if (!previousCapital) b.append('_');
                b.append(Character.toLowerCase(ch));
                previousCapital = true;
            } else {
                b.append(ch);
                previousCapital = false;
            }
        }
        return b.toString();
    }

    @SuppressWarnings("unchecked")
    private void struct(String qname, Class<?> cls, int version, Schema schema) throws Exception {
        Map<String, Object> entry = structs.computeIfAbsent(qname, k -> {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("fields", new LinkedHashMap<String, Object>());
            m.put("versions", new TreeMap<Integer, Object>());
            return m;
        });
        Object instance = cls.getDeclaredConstructor().newInstance();
        Map<String, Field> bySnake = new LinkedHashMap<>();
        for (Field f : cls.getDeclaredFields()) {
            if (Modifier.isStatic(f.getModifiers()) || f.getName().startsWith("_")) continue;
            f.setAccessible(true);
            bySnake.put(snake(f.getName()), f);
        }
        Map<String, Object> fields = (Map<String, Object>) entry.get("fields");
        // Every field of the class, in declaration order, even those of versions not in this range.
        for (Map.Entry<String, Field> e : bySnake.entrySet()) {
            if (!fields.containsKey(e.getKey())) {
                Map<String, Object> fd = new LinkedHashMap<>();
                fd.put("json", e.getValue().getName());
                fd.put("default", value(e.getValue().get(instance)));
                fields.put(e.getKey(), fd);
            }
        }
        List<Object> regular = new ArrayList<>();
        List<Object> tagged = new ArrayList<>();
        boolean flexible = false;
        for (BoundField bf : schema.fields()) {
            if (bf.def.type instanceof TaggedFields) {
                flexible = true;
                for (Map.Entry<Integer, org.apache.kafka.common.protocol.types.Field> t
                        : ((TaggedFields) bf.def.type).fields().entrySet()) {
                    Field jf = bySnake.get(t.getValue().name);
                    tagged.add(List.of(t.getKey(), t.getValue().name,
                        type(qname, jf, t.getValue().type, version)));
                }
            } else {
                Field jf = bySnake.get(bf.def.name);
                if (jf == null) throw new IllegalStateException(qname + " has no field for " + bf.def.name);
                regular.add(List.of(bf.def.name, type(qname, jf, bf.def.type, version)));
            }
        }
        Map<String, Object> layout = new LinkedHashMap<>();
        layout.put("flexible", flexible);
        layout.put("fields", regular);
        layout.put("tagged", tagged);
        ((Map<Integer, Object>) entry.get("versions")).put(version, layout);
    }

    private Object type(String parent, Field jf, org.apache.kafka.common.protocol.types.Type t, int version)
            throws Exception {
        if (t instanceof Schema) {
            Class<?> nested = jf.getType();
            String qname = parent + "." + nested.getSimpleName();
            struct(qname, nested, version, (Schema) t);
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("struct", qname);
            m.put("nullable", t.isNullable());
            return m;
        }
        if (t.isArray()) {
            org.apache.kafka.common.protocol.types.Type element = t.arrayElementType().get();
            Object elementType;
            if (element instanceof Schema) {
                Class<?> nested = elementClass(jf);
                String qname = parent + "." + nested.getSimpleName();
                struct(qname, nested, version, (Schema) element);
                elementType = Map.of("struct", qname, "nullable", false);
            } else {
                elementType = element.toString();
            }
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("array", elementType);
            m.put("compact", t instanceof CompactArrayOf);
            m.put("nullable", t.isNullable());
            return m;
        }
        return t.toString();
    }

    // List<X> fields name X in their generic type; keyed collections extend a collection of X.
    private static Class<?> elementClass(Field jf) {
        Type generic = jf.getGenericType();
        if (generic instanceof ParameterizedType) {
            return (Class<?>) ((ParameterizedType) generic).getActualTypeArguments()[0];
        }
        Type sup = jf.getType().getGenericSuperclass();
        return (Class<?>) ((ParameterizedType) sup).getActualTypeArguments()[0];
    }

    private static Object value(Object v) {
        if (v == null) return null;
        if (v instanceof Uuid) return Map.of("uuid", v.toString());
        if (v instanceof byte[]) {
            StringBuilder b = new StringBuilder();
            for (byte x : (byte[]) v) b.append(String.format("%02x", x));
            return Map.of("hex", b.toString());
        }
        if (v instanceof Collection) {
            if (!((Collection<?>) v).isEmpty()) throw new IllegalStateException("non-empty default list");
            return List.of();
        }
        if (v instanceof Message) return Map.of("struct_default", true);
        return v;
    }

    private static String json(Object v) {
        if (v == null) return "null";
        if (v instanceof String) {
            StringBuilder b = new StringBuilder("\"");
            for (char ch : ((String) v).toCharArray()) {
                if (ch == '"' || ch == '\\') b.append('\\').append(ch);
                else if (ch < 0x20) b.append(String.format("\\u%04x", (int) ch));
                else b.append(ch);
            }
            return b.append('"').toString();
        }
        if (v instanceof Number || v instanceof Boolean) return v.toString();
        if (v instanceof Map) {
            List<String> parts = new ArrayList<>();
            ((Map<?, ?>) v).forEach((k, val) -> parts.add(json(k.toString()) + ":" + json(val)));
            return "{" + String.join(",", parts) + "}";
        }
        if (v instanceof List) {
            List<String> parts = new ArrayList<>();
            ((List<?>) v).forEach(x -> parts.add(json(x)));
            return "[" + String.join(",", parts) + "]";
        }
        throw new IllegalStateException("cannot write " + v.getClass());
    }
}
